"""The pipeline's compiled pair scan never hides a cross that detection would find."""

from decimal import Decimal as D

import pytest

from markets.venues import VenueConfig
from trading.engine.pipeline import Limits, Pipeline

MARKET = "BTC-USD"


@pytest.fixture
def pipeline() -> Pipeline:
    venues = [
        VenueConfig(slug, f"ws://x/{slug}", symbols={MARKET: symbol}, lots={MARKET: D("0.01")})
        for slug, symbol in (("coinbase", "BTC-USD"), ("kraken", "BTC/USD"))
    ]
    return Pipeline(venues, Limits())


def put(pipeline: Pipeline, venue: str, bids: list, asks: list, now: float) -> list:
    """Load `venue`'s book as a frame would and run detection the way the engine does."""
    book = pipeline.books[MARKET][venue]
    book.load([(D(p), D(s), None) for p, s in bids], [(D(p), D(s), None) for p, s in asks])
    book.stamp(None, now)
    return pipeline.detect([MARKET], now, venue)


def opened(events: list) -> list[tuple[str, str, D]]:
    return [(e.key.buy_venue, e.key.sell_venue, e.cross.size) for e in events if e.kind == "open"]


def test_a_top_that_pays_at_prices_but_not_in_size_is_walked_again_on_a_size_change(pipeline):
    put(pipeline, "coinbase", [("101", "1")], [("103", "1")], 1.0)
    # Kraken's ask pays against Coinbase's bid, but holds half a lot: no cross yet.
    assert put(pipeline, "kraken", [("99", "1")], [("100", "0.005"), ("102", "1")], 1.1) == []

    # The same prices, a size that fills lots: a frame that moves no price must still open it.
    events = put(pipeline, "kraken", [("99", "1")], [("100", "0.5"), ("102", "1")], 1.2)

    assert opened(events) == [("kraken", "coinbase", D("0.50"))]


def test_a_moved_top_is_checked_against_the_other_venues(pipeline):
    put(pipeline, "coinbase", [("99", "1")], [("103", "1")], 1.0)
    put(pipeline, "kraken", [("98", "1")], [("100", "1")], 1.1)
    scan = pipeline._scan(MARKET, pipeline.limits)
    assert scan is None or not scan.crossable(1.1, 2.0, None)  # nothing pays at the top

    # Kraken's top moves, still below Coinbase's bid on the buy side and above its ask.
    assert put(pipeline, "kraken", [("98.5", "1")], [("99.5", "1")], 1.2) == []

    # Now Kraken's ask drops under Coinbase's bid: the cross opens on that very frame.
    events = put(pipeline, "kraken", [("98.5", "1")], [("98", "0.3")], 1.3)

    assert opened(events) == [("kraken", "coinbase", D("0.30"))]
    assert MARKET in pipeline.crossing


def test_a_moved_bid_reaching_another_venues_ask_opens_at_once(pipeline):
    put(pipeline, "coinbase", [("99", "1")], [("103", "1")], 1.0)
    put(pipeline, "kraken", [("98", "1")], [("100", "1")], 1.1)

    events = put(pipeline, "kraken", [("104", "0.2")], [("105", "1")], 1.2)

    assert opened(events) == [("coinbase", "kraken", D("0.20"))]


def test_a_book_lagging_behind_its_venue_takes_part_in_no_cross_until_it_catches_up(pipeline):
    pipeline.limits = Limits(max_lag_s=1.0)
    put(pipeline, "coinbase", [("101", "1")], [("103", "1")], 1.0)
    kraken = pipeline.books[MARKET]["kraken"]
    kraken.load([(D("99"), D("1"), None)], [(D("100"), D("0.5"), None)])
    kraken.stamp(None, 1.1, lag=3.0)  # its venue's clock says this change is 3 s old

    assert pipeline.detect([MARKET], 1.1, "kraken") == []

    kraken.stamp(None, 1.2, lag=0.2)
    events = pipeline.detect([MARKET], 1.2, "kraken")

    assert opened(events) == [("kraken", "coinbase", D("0.50"))]


def test_without_a_lag_limit_a_late_book_still_crosses(pipeline):
    put(pipeline, "coinbase", [("101", "1")], [("103", "1")], 1.0)
    kraken = pipeline.books[MARKET]["kraken"]
    kraken.load([(D("99"), D("1"), None)], [(D("100"), D("0.5"), None)])
    kraken.stamp(None, 1.1, lag=3.0)

    assert opened(pipeline.detect([MARKET], 1.1, "kraken")) == [("kraken", "coinbase", D("0.50"))]
