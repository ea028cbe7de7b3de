"""The paper venue fills against the published book, level by level up to the limit."""

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import pytest

from markets.venues.orders import OrderRequest, take_levels
from tests.factories import publish_test_book
from trading.execution.paper import PaperVenue

D = Decimal
ASKS = [(D("99.5"), D("0.4")), (D(100), D(1)), (D(101), D(5))]
BIDS = [(D("102.5"), D("0.3")), (D(102), D(2))]


def request(side="buy", amount="1", limit="100", cid=None) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid or f"paper-test-{time.monotonic_ns()}",
        venue="pv",
        market="BTC-USD",
        venue_symbol="BTC-USD",
        side=side,
        amount=D(amount),
        limit_price=D(limit),
        taker_fee_bps=D(10),
    )


def place(req: OrderRequest, **kwargs):
    return asyncio.run(PaperVenue(max_book_age_s=5, **kwargs).place_ioc(req))


def test_take_levels_stops_at_the_limit_price():
    assert take_levels(ASKS, side="buy", amount=D(3), limit=D(100)) == [
        (D("99.5"), D("0.4")),
        (D(100), D(1)),
    ]
    assert take_levels(BIDS, side="sell", amount=D("0.5"), limit=D(102)) == [
        (D("102.5"), D("0.3")),
        (D(102), D("0.2")),
    ]


def test_buy_fills_level_by_level_with_the_taker_fee_on_each_fill():
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=ASKS)

    report = place(request(amount="1", limit="100"))

    assert [(f.price, f.amount, f.fee) for f in report.fills] == [
        (D("99.5"), D("0.4"), D("0.0398")),
        (D(100), D("0.6"), D("0.06")),
    ]


def test_what_is_beyond_the_limit_does_not_fill():
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=ASKS)

    report = place(request(side="sell", amount="5", limit="102"))

    assert report.filled == D("2.3")


@pytest.mark.parametrize(
    "stamps",
    [{"valid": False}, {"received_ts": time.time() - 60}],
    ids=["invalid", "stale"],
)
def test_an_invalid_or_stale_book_fills_nothing(stamps):
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=ASKS, **stamps)

    assert place(request()).fills == ()


def test_a_missing_book_fills_nothing():
    assert place(replace(request(), venue="nowhere")).fills == ()


def test_placing_the_same_client_order_id_again_returns_the_first_result():
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=ASKS)
    req = request(cid=f"same-{time.monotonic_ns()}")
    first = place(req)
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=[(D(90), D(10))])

    assert place(req) == first


def test_latency_delays_the_fill():
    publish_test_book("pv", "BTC-USD", bids=BIDS, asks=ASKS)
    started = time.monotonic()

    place(request(), latency_ms=50)

    assert time.monotonic() - started >= 0.05
