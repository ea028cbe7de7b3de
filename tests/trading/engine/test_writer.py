"""Lifecycle events become one Opportunity row per lifecycle, written in batches."""

from decimal import Decimal

import pytest
from django.test import override_settings

from tests.factories import ExchangeFactory, MarketFactory, OpportunityFactory
from trading.detector import best_cross
from trading.engine.writer import (
    BOOK_CACHE_UNAVAILABLE,
    OpportunityWriter,
    close_stale_rows,
    execute_opened,
)
from trading.lifecycle import OpportunityKey, OpportunityTracker
from trading.models import Opportunity, Trade

KEY = OpportunityKey("BTC-USD", "kraken", "coinbase")
# A real Redis client whose server is down: nothing listens on loopback port 1.
REDIS_DOWN = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}
D = Decimal


def cross(bid: str, size: str = "1"):
    return walk([(D("100"), D(size))], [(D(bid), D(size))])


def walk(asks, bids):
    return best_cross(
        asks,
        bids,
        buy_fee=D("0.001"),
        sell_fee=D("0.001"),
        min_profit_bps=D(0),
        buy_lot=D("0.01"),
        sell_lot=D("0.01"),
        exchange_ts=1.0,
        received_ts=2.0,
        detected_ts=3.0,
    )


@pytest.fixture
def writer(db):
    market = MarketFactory(symbol="BTC-USD")
    exchanges = {slug: ExchangeFactory(slug=slug).id for slug in ("kraken", "coinbase")}
    return OpportunityWriter(exchanges, {"BTC-USD": market.id})


def test_one_row_per_lifecycle_tracks_last_and_peak(writer):
    tracker = OpportunityTracker()

    opened = writer.save([tracker.observe(KEY, cross("101"), 10.0)])
    writer.save(
        [tracker.observe(KEY, cross("102"), 11.0), tracker.observe(KEY, cross("101.5"), 12)]
    )
    writer.save([tracker.observe(KEY, None, 13.5)])

    row = Opportunity.objects.get()
    assert opened == [row.id]
    assert row.state == "closed"
    assert row.net_profit == cross("101.5").net_profit
    assert row.peak_net_profit == cross("102").net_profit
    assert row.updates == 2
    assert row.duration.total_seconds() == 3.5
    assert (row.buy_exchange.slug, row.sell_exchange.slug) == ("kraken", "coinbase")


def test_the_row_keeps_the_levels_walked_to_of_the_last_cross_for_the_legs(writer):
    tracker = OpportunityTracker()
    deep = walk([(D(100), D("0.4")), (D("100.5"), D(1))], [(D(102), D("0.3")), (D("101.8"), D(1))])

    writer.save([tracker.observe(KEY, deep, 10.0)])
    row = Opportunity.objects.get()
    assert (row.buy_limit, row.sell_limit) == (D("100.5"), D("101.8"))
    assert row.buy_vwap < row.buy_limit and row.sell_vwap > row.sell_limit

    writer.save([tracker.observe(KEY, cross("101"), 11.0)])  # one level a side now
    row.refresh_from_db()
    assert (row.buy_limit, row.sell_limit) == (D(100), D(101))


def test_a_lifecycle_opened_and_closed_in_one_batch_is_saved_closed(writer):
    tracker = OpportunityTracker()

    opened = writer.save([tracker.observe(KEY, cross("101"), 1.0), tracker.observe(KEY, None, 2.0)])

    assert opened == []
    assert Opportunity.objects.get().state == "closed"


def test_rows_left_open_by_a_stopped_engine_are_closed_at_start(writer):
    writer.save([OpportunityTracker().observe(KEY, cross("101"), 1.0)])

    assert close_stale_rows() == 1

    row = Opportunity.objects.get()
    assert (row.state, row.close_reason) == ("closed", "engine restart")


@pytest.fixture
def two_opened(desk):
    _profile, first = desk
    second = OpportunityFactory(
        market=first.market, buy_exchange=first.buy_exchange, sell_exchange=first.sell_exchange
    )
    return [first, second]


def test_opened_while_the_book_cache_is_down_each_carries_that_refusal(two_opened):
    with override_settings(CACHES={"default": REDIS_DOWN, "books": REDIS_DOWN}):
        enqueued = execute_opened([o.id for o in two_opened])

    assert enqueued == 0
    assert not Trade.objects.exists()
    for opportunity in two_opened:
        opportunity.refresh_from_db()
        assert opportunity.refusals == {BOOK_CACHE_UNAVAILABLE: 1}


def test_opened_while_the_book_cache_answers_carry_no_such_refusal(two_opened):
    execute_opened([o.id for o in two_opened])

    for opportunity in two_opened:
        opportunity.refresh_from_db()
        assert BOOK_CACHE_UNAVAILABLE not in opportunity.refusals
