"""The dashboard and market detail pages: spreads from the cached books, health, open crosses."""

import time
from decimal import Decimal

import pytest
from django.core.cache import cache, caches
from django.urls import reverse

from arbsite.roles import TRADER, VIEWER
from markets.bookcache import publish_book
from markets.heartbeat import ENGINE_HEARTBEAT_KEY, record_engine_heartbeat
from risk.models import KillSwitch
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_caches():
    """Books and the heartbeat live in caches that outlive a test's transaction."""
    caches["books"].clear()
    cache.delete(ENGINE_HEARTBEAT_KEY)


def book(venue: str, bid: str, ask: str, *, market: str = "BTC-USD", valid: bool = True) -> None:
    publish_book(
        {
            "venue": venue,
            "market": market,
            "bids": [(Decimal(bid), Decimal("1")), (Decimal(bid) - 1, Decimal("3"))],
            "asks": [(Decimal(ask), Decimal("1")), (Decimal(ask) + 1, Decimal("3"))],
            "sequence": 7,
            "exchange_ts": None,
            "received_ts": time.time() - 1.5,
            "valid": valid,
        }
    )


@pytest.fixture
def venues():
    market = MarketFactory(symbol="BTC-USD")
    cheap = ExchangeFactory(slug="cheap", name="Cheap", taker_fee_bps=Decimal(10))
    dear = ExchangeFactory(slug="dear", name="Dear", taker_fee_bps=Decimal(10))
    ListingFactory(market=market, exchange=cheap)
    ListingFactory(market=market, exchange=dear)
    return market


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(VIEWER))
    return client


def test_dashboard_shows_each_venues_best_bid_and_ask_and_the_paying_cross(viewer, venues):
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'id="spread-BTC-USD"' in html
    assert "99.00" in html and "103.00" in html
    # Buy at 100 on Cheap, sell at 102 on Dear: 200 bps gross, 20 bps of fees.
    assert "buy Cheap, sell Dear" in html
    assert '<tr class="pays">' in html
    assert "179.80 bps" in html


def test_dashboard_does_not_highlight_a_cross_that_fees_eat(viewer, venues):
    book("cheap", "99.00", "100.00")
    book("dear", "100.05", "101.00")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert '<tr class="pays">' not in html
    assert "buy Cheap, sell Dear" in html  # still the best pair, shown without highlight


def test_dashboard_marks_a_venue_without_a_book(viewer, venues):
    book("cheap", "99.00", "100.00")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert "no book" in html


def test_dashboard_lists_open_opportunities_with_size_profit_and_bps(viewer, venues):
    OpportunityFactory(market=venues, net_profit=Decimal("12.3456"), net_bps=Decimal("42.5"))
    OpportunityFactory(market=venues, state="closed", net_profit=Decimal("777"))

    html = viewer.get(reverse("dashboard")).content.decode()

    assert "Open opportunities (1)" in html
    assert "12.35" in html and "42.50" in html
    assert "777" not in html


def test_dashboard_shows_each_feeds_state_from_the_engine_heartbeat(viewer, venues):
    record_engine_heartbeat(
        {
            "feeds": {
                "cheap": {"state": "live", "frames": 120, "reconnects": 0, "last_frame_age": 0.2},
                "dear": {"state": "circuit_open", "frames": 9, "reconnects": 11},
            }
        }
    )

    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'class="state state-live">live<' in html
    assert 'class="state state-circuit_open">circuit open<' in html
    assert "not reporting" not in html


def test_dashboard_says_when_the_engine_is_not_reporting(viewer, venues):
    html = viewer.get(reverse("dashboard")).content.decode()

    assert "not reporting" in html


@pytest.mark.parametrize(("role", "sees_controls"), [(VIEWER, False), (TRADER, True)])
def test_kill_switch_control_and_execute_links_only_for_traders(
    client, user_with_role, venues, role, sees_controls
):
    OpportunityFactory(market=venues)
    client.force_login(user_with_role(role))

    html = client.get(reverse("dashboard")).content.decode()

    assert ("Throw kill switch…" in html) is sees_controls
    assert ("Execute…" in html) is sees_controls
    assert "Kill switch off" in html


def test_every_page_shows_the_kill_switch_when_it_is_on(viewer, venues):
    KillSwitch.throw(reason="venue outage")

    html = viewer.get(reverse("opportunities")).content.decode()

    assert "Kill switch ON" in html and "venue outage" in html


def test_dashboard_subscribes_its_live_socket_to_each_markets_spreads(viewer, venues):
    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'ws-connect="/ws/live/?topics=desk%2Chealth' in html
    assert "spreads%3ABTC-USD" in html


def test_market_detail_shows_each_venues_depth_side_by_side(viewer, venues):
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00")

    html = viewer.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert 'id="depth"' in html and 'id="spread-chart"' in html
    assert html.count('<table class="depth">') == 2
    assert "98.00" in html and "104.00" in html  # second levels
    # Highest bid 102 against lowest ask 100, over their mid 101.
    assert 'data-spread-bps="198.0198"' in html


def test_market_detail_of_an_unknown_market_is_404(viewer):
    assert viewer.get(reverse("market_detail", args=["NOPE-USD"])).status_code == 404


def test_pages_load_no_inline_script(viewer, venues):
    response = viewer.get(reverse("market_detail", args=["BTC-USD"]))

    assert "<script>" not in response.content.decode()
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_prices_and_sizes_are_shown_on_the_venues_tick_and_lot(viewer, venues):
    # Binance writes eight decimals whatever the tick; an off-grid price is shown as it came.
    publish_book(
        {
            "venue": "cheap",
            "market": "BTC-USD",
            "bids": [(Decimal("60078.01000000"), Decimal("0.25830000"))],
            "asks": [(Decimal("60079.555"), Decimal("0.11820000"))],
            "sequence": 1,
            "exchange_ts": None,
            "received_ts": time.time(),
            "valid": True,
        }
    )

    pages = [
        viewer.get(reverse(name, **kwargs)).content.decode()
        for name, kwargs in [
            ("dashboard", {}),
            ("market_detail", {"args": ["BTC-USD"]}),
        ]
    ]

    for html in pages:
        assert ">60078.01<" in html and ">0.2583<" in html and ">0.1182<" in html
        assert ">60079.555<" in html
        assert "60078.01000000" not in html
