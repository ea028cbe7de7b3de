"""The dashboard: spreads from the published books and the engine's crosses, health, controls."""

import re
import time
from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.urls import reverse

from arbsite.roles import TRADER, VIEWER
from markets.bookcache import publish_book
from markets.heartbeat import record_engine_heartbeat
from markets.models import Exchange
from portfolio.models import Mode
from risk.models import KillSwitch, VenuePause
from tests.factories import (
    OpportunityFactory,
    RiskProfileFactory,
    TradeFactory,
    desk_user_without_trades,
    timed_orders,
)

pytestmark = pytest.mark.django_db


def opened(market, buy, sell, *, bps: str, net: str = "5"):
    """An opportunity the engine opened: buy on `buy`, sell on `sell`."""
    return OpportunityFactory(
        market=market,
        buy_exchange=buy,
        sell_exchange=sell,
        net_bps=Decimal(bps),
        net_profit=Decimal(net),
        size=Decimal("0.5"),
    )


def test_dashboard_shows_each_venues_top_and_the_cross_the_engine_opened(viewer, venues, book):
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00")
    RiskProfileFactory(min_profit_bps=Decimal(5))
    cheap, dear = Exchange.objects.get(slug="cheap"), Exchange.objects.get(slug="dear")
    opened(venues, cheap, dear, bps="150.25", net="0.75")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'id="spread-BTC-USD"' in html
    assert "99.00" in html and "103.00" in html
    # Buy at 100 on Cheap, sell at 102 on Dear: 200 bps gross, 20 bps of fees at the top.
    assert "179.80" in html
    # The caption is the engine's own cross (its walked size and net), not a second walk.
    assert "buy Cheap, sell Dear" in html
    assert '<span class="pays">150.25 bps</span> on 0.5 (0.75 net)' in html
    assert html.count('<tr class="pays">') == 1


def test_dashboard_marks_nothing_when_the_engine_opened_nothing(viewer, venues, book):
    # The tops cross after fees, but the engine opened no opportunity (its walk found no size,
    # a book too old, say): the page does not call it paying on its own.
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00")
    RiskProfileFactory(min_profit_bps=Decimal(5))

    html = viewer.get(reverse("dashboard")).content.decode()

    assert '<tr class="pays">' not in html
    assert '<span class="muted">179.80 bps</span>' in html
    assert "buy Cheap, sell Dear" in html  # still the best pair at the top, not highlighted


def test_in_live_trading_the_dashboard_marks_exactly_the_crosses_paying_under_the_live_profile(
    viewer, venues, book
):
    book("cheap", "99.00", "100.00")
    book("dear", "99.50", "100.50")
    cheap, dear = Exchange.objects.get(slug="cheap"), Exchange.objects.get(slug="dear")
    RiskProfileFactory(name="paper", mode=Mode.PAPER, min_profit_bps=Decimal(5))
    RiskProfileFactory(name="live", mode=Mode.LIVE, min_profit_bps=Decimal(50))
    opened(venues, cheap, dear, bps="20")  # pays under paper's 5 bps, not under live's 50
    opened(venues, dear, cheap, bps="80")

    html = viewer.get(reverse("dashboard")).content.decode()

    rows = html.split('id="spread-BTC-USD"', 1)[1].split("</table>", 1)[0].split("<tr")
    paying = [row for row in rows if row.startswith(' class="pays"')]
    assert len(paying) == 1 and "Dear" in paying[0]
    assert '<span class="pays">80.00 bps</span>' in html and "buy Dear, sell Cheap" in html


def test_an_opened_cross_below_the_minimum_is_shown_but_not_marked(viewer, venues, book):
    book("cheap", "99.00", "100.00")
    book("dear", "99.50", "100.50")
    cheap, dear = Exchange.objects.get(slug="cheap"), Exchange.objects.get(slug="dear")
    RiskProfileFactory(min_profit_bps=Decimal(30))
    opened(venues, cheap, dear, bps="12.5")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert '<tr class="pays">' not in html
    assert "12.50 bps</span> on 0.5 (5.00 net, below the desk's minimum)" in html


def test_dashboard_marks_a_venue_without_a_book(viewer, venues, book):
    book("cheap", "99.00", "100.00")

    html = viewer.get(reverse("dashboard")).content.decode()

    assert "no book" in html


def test_dashboard_lists_open_opportunities_with_size_profit_and_bps(viewer, venues, book):
    OpportunityFactory(market=venues, net_profit=Decimal("12.3456"), net_bps=Decimal("42.5"))
    OpportunityFactory(market=venues, state="closed", net_profit=Decimal("777"))

    html = viewer.get(reverse("dashboard")).content.decode()

    assert "Open opportunities (1)" in html
    assert "12.35" in html and "42.50" in html
    assert "777.00" not in html  # the closed one (a bare 777 can be in a timestamp)


def test_dashboard_shows_each_feeds_state_from_the_engine_heartbeat(viewer, venues, book):
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


def test_dashboard_says_when_the_engine_is_not_reporting(viewer, venues, book):
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


def test_every_page_shows_the_kill_switch_when_it_is_on(viewer, venues, book):
    KillSwitch.throw(reason="venue outage")

    html = viewer.get(reverse("opportunities")).content.decode()

    assert "Kill switch ON" in html and "venue outage" in html


def test_dashboard_subscribes_its_live_socket_to_each_markets_spreads(viewer, venues, book):
    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'ws-connect="/ws/live/?topics=desk%2Chealth' in html
    assert "spreads%3ABTC-USD" in html


def test_prices_and_sizes_are_shown_on_the_venues_tick_and_lot(viewer, venues, book):
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


def test_a_venue_lagging_past_the_profiles_limit_is_named_and_left_out_of_the_top_cross(
    viewer, venues, book
):
    RiskProfileFactory(min_profit_bps=Decimal(5), max_lag_ms=1000)
    book("cheap", "99.00", "100.00")
    publish_book(
        {
            "venue": "dear",
            "market": "BTC-USD",
            "bids": [(Decimal("102.00"), Decimal("1"))],
            "asks": [(Decimal("103.00"), Decimal("1"))],
            "sequence": 7,
            "exchange_ts": None,
            "received_ts": time.time(),
            "lag": 3.2,
            "valid": True,
        }
    )

    html = viewer.get(reverse("dashboard")).content.decode()

    assert "(lagging 3.2 s behind the venue: left out of crosses)" in html
    assert "179.80" not in html  # no cross at the top with Dear's late prices
    assert "buy Cheap, sell Dear" not in html


def test_a_frozen_feed_says_so_on_the_dashboard(viewer, venues):
    record_engine_heartbeat(
        {"feeds": {"cheap": {"state": "frozen", "last_frame_age": 3.4, "lag": 0.0}}}
    )

    html = viewer.get(reverse("dashboard")).content.decode()

    assert 'class="state state-frozen">frozen: no frame, not even a heartbeat<' in html
    assert "3.4 s ago" in html


def test_the_venue_table_shows_each_venues_ack_p50_and_p99_and_a_paused_venue_with_its_limit(
    viewer, venues
):
    cheap, dear = Exchange.objects.get(slug="cheap"), Exchange.objects.get(slug="dear")
    RiskProfileFactory(ack_window=4, max_ack_p99_ms=500)
    timed_orders(cheap, [5.0, 10.0, 20.0, 30.0, 40.0], mode=Mode.PAPER)  # the oldest falls out
    timed_orders(dear, [812.4], mode=Mode.PAPER)
    timed_orders(dear, [1.0], mode=Mode.LIVE)  # not the mode the desk executes in
    VenuePause.pause(exchange_id=dear.pk, mode=Mode.PAPER, p99_ms=812.4, limit_ms=500, orders=1)
    record_engine_heartbeat({"feeds": {"cheap": {"state": "live"}, "dear": {"state": "live"}}})

    html = viewer.get(reverse("dashboard")).content.decode()

    table = html.split('id="venue-health"', 1)[1].split("</table>", 1)[0]
    rows = {row.split("</th>", 1)[0]: row for row in table.split('<th scope="row">')[1:]}
    assert "Order ack p50 / p99, last 4" in table
    assert "20.0 / 40.0 ms (4 orders)" in rows["Cheap"] and "paused" not in rows["Cheap"]
    assert "812.4 / 812.4 ms (1 order)" in rows["Dear"]
    assert "automatic execution paused: p99 812.4 ms over the 500 ms limit" in rows["Dear"]


def test_the_dashboard_lists_recent_trades_only_to_who_may_see_trades(client, viewer, venues):
    trade = TradeFactory()
    shown = viewer.get(reverse("dashboard")).content.decode()
    client.force_login(desk_user_without_trades())

    hidden = client.get(reverse("dashboard")).content.decode()

    assert 'id="recent-trades"' in shown and f"#{trade.pk}</a>" in shown
    assert 'id="recent-trades"' not in hidden and "No trades yet" not in hidden
    topics = unquote(re.search(r"/ws/live/\?topics=([^\"]*)", hidden).group(1)).split(",")
    assert "trades" not in topics and "pnl" in topics
