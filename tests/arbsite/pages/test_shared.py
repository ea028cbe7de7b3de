"""The reads one push's fragments share: made once per push, the same fragments as a page
request renders, and fresh again for the next push."""

import re
import time
from decimal import Decimal

import pytest
from django.core.exceptions import FieldFetchBlocked
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arbsite import live
from arbsite.access import OPERATE
from arbsite.pages import shared
from arbsite.pages.fragments import TOPICS, Fragment
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    OpportunityFactory,
    RiskProfileFactory,
    publish_test_book,
)
from trading.models import Opportunity

pytestmark = pytest.mark.django_db

# What one batch of the engine's notices re-renders on the dashboard.
PUSH = [
    *(("spreads", "BTC-USD"), ("spreads", "ETH-USD"), ("desk", ""), ("opportunities", "")),
    ("controls", ""),  # the dashboard's own switches: the status bar's reads again
]


def fragment(topic: str) -> Fragment:
    return next(f for _, f in TOPICS[topic])


@pytest.fixture
def desk():
    """Two markets on three venues, open and closed crosses with different margins."""
    RiskProfileFactory(is_active=True, min_profit_bps=Decimal(5))
    venues = [ExchangeFactory(slug=slug) for slug in ("binance", "coinbase", "kraken")]
    for symbol in ("BTC-USD", "ETH-USD"):
        market = MarketFactory(symbol=symbol)
        for venue in venues:
            ListingFactory(market=market, exchange=venue)
            publish_test_book(
                venue.slug,
                symbol,
                bids=[("100", "1")],
                asks=[("100.5", "1")],
                received_ts=time.time(),
            )
        for buy, sell, bps in [(0, 1, "3"), (1, 2, "180"), (2, 0, "40")]:
            OpportunityFactory(
                market=market, buy_exchange=venues[buy], sell_exchange=venues[sell], net_bps=bps
            )
        OpportunityFactory(
            market=market, buy_exchange=venues[0], sell_exchange=venues[2], state="closed"
        )


AGE = re.compile(r'(<span class="age" data-since="[0-9.]+">)[^<]*<')


def steady(html: str) -> str:
    """`html` without the books' ages, which grow between two renders."""
    return AGE.sub(r"\1<", html)


def rendered(published: float) -> list[str]:
    return [steady(live.render(fragment(t), key, OPERATE, published)) for t, key in PUSH]


def tables(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split(" FROM ", 1)[1].split()[0] for q in captured if " FROM " in q["sql"]]


def test_one_push_reads_the_profiles_the_open_opportunities_and_the_listings_once(desk):
    with CaptureQueriesContext(connection) as captured:
        rendered(time.time())

    read = tables(captured)
    assert read.count('"risk_riskprofile"') == 1
    assert read.count('"trading_opportunity"') == 1
    assert read.count('"markets_listing"') == 1  # both markets' spread tables
    assert read.count('"risk_killswitch"') == 1  # the status bar's and the controls'


def test_a_push_renders_what_a_page_request_renders(desk):
    published = time.time()

    pushed = rendered(published)
    # Outside a push: every read made afresh.
    requested = [steady(fragment(t).render(key, OPERATE, published)) for t, key in PUSH]

    assert pushed == requested
    # The spread table's best cross is the open one with the highest margin.
    assert "180" in pushed[0] and 'id="spread-BTC-USD"' in pushed[0]


def test_the_next_push_sees_what_changed_after_the_last(desk):
    first = rendered(1.0)
    Opportunity.objects.filter(state="open").update(state="closed")
    again, second = rendered(1.0), rendered(2.0)

    assert again == first  # the same push: its one snapshot
    assert second != first
    assert shared.open_opportunities() == []  # outside a push: read afresh


def test_an_open_opportunity_field_the_pages_do_not_read_raises_instead_of_a_query_per_row(desk):
    first = shared.open_opportunities()[0]

    with CaptureQueriesContext(connection) as captured, pytest.raises(FieldFetchBlocked):
        getattr(first, "levels_walked")  # noqa: B009 (the read is the test)

    assert first.market.symbol in ("BTC-USD", "ETH-USD") and len(captured) == 0
