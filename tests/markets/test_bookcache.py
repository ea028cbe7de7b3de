"""The book cache: tops published by the engine, read back exact, aged by the venue's clock,
and each book's best bid and ask sampled once a second for the last half hour."""

import time
from decimal import Decimal

import pytest
from django.core.cache import caches

from markets import bookcache
from markets.bookcache import (
    TOP_HISTORY_S,
    TopSample,
    book_age_s,
    publish_book,
    read_book,
    read_books,
    record_top,
    top_history,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_books():
    caches["books"].clear()
    bookcache._sampled.clear()  # what this process sampled is in the cache just cleared


def top(*, received_ts: float, lag: float = 0.0) -> dict:
    return {
        "venue": "kraken",
        "market": "BTC-USD",
        "bids": [(Decimal("60000.10"), Decimal("0.5"))],
        "asks": [(Decimal("60000.20"), Decimal("1.25"))],
        "sequence": 9,
        "exchange_ts": None,
        "received_ts": received_ts,
        "lag": lag,
        "valid": True,
    }


def test_a_published_book_reads_back_with_exact_levels():
    publish_book(top(received_ts=time.time()))

    book = read_book("kraken", "BTC-USD")

    assert book["bids"] == [(Decimal("60000.10"), Decimal("0.5"))]
    assert book["asks"] == [(Decimal("60000.20"), Decimal("1.25"))]


def test_the_books_of_several_venues_read_back_together_and_a_missing_one_is_none():
    publish_book(top(received_ts=time.time()))
    publish_book({**top(received_ts=time.time()), "venue": "coinbase", "bids": []})

    books = read_books(["kraken", "coinbase", "binance"], "BTC-USD")

    assert list(books) == ["kraken", "coinbase", "binance"]
    assert books["kraken"]["asks"] == [(Decimal("60000.20"), Decimal("1.25"))]
    assert books["coinbase"]["bids"] == [] and books["coinbase"]["venue"] == "coinbase"
    assert books["binance"] is None


def test_a_lagging_books_age_counts_how_late_it_came_by_the_venues_clock():
    now = time.time()
    publish_book(top(received_ts=now - 0.5, lag=3.0))

    age = book_age_s(read_book("kraken", "BTC-USD"), now)

    assert age == pytest.approx(3.5)


def test_a_book_published_before_lag_was_recorded_ages_by_receive_time():
    now = time.time()
    book = {**top(received_ts=now - 0.5), "lag": None}

    assert book_age_s(book, now) == pytest.approx(0.5)


NOW = 1_800_000_000.0  # a minute boundary (30,000,000 minutes), so the tests cross one


def sample(ts: float, bid: str, ask: str, venue: str = "kraken") -> None:
    record_top(venue, "BTC-USD", Decimal(bid), Decimal(ask), ts)


def test_a_published_book_adds_its_best_bid_and_ask_to_the_history():
    publish_book(top(received_ts=time.time()))

    history = top_history("BTC-USD", ["kraken"], time.time())

    assert [(s.bid, s.ask) for s in history["kraken"]] == [
        (Decimal("60000.10"), Decimal("60000.20"))
    ]
    assert history["kraken"][0].mid == Decimal("60000.15")


@pytest.mark.parametrize(
    "change", [{"valid": False}, {"bids": []}, {"asks": []}], ids=["resyncing", "no bid", "no ask"]
)
def test_a_book_without_a_valid_top_adds_nothing_to_the_history(change):
    publish_book({**top(received_ts=time.time()), **change})

    assert top_history("BTC-USD", ["kraken"], time.time()) == {"kraken": []}


def test_the_history_keeps_one_sample_a_second_the_first_of_each():
    sample(NOW - 2.9, "100", "101")
    sample(NOW - 2.2, "200", "201")  # the same second: dropped
    sample(NOW - 1.5, "102", "103")

    history = top_history("BTC-USD", ["kraken"], NOW)

    assert history["kraken"] == [
        TopSample(ts=int(NOW) - 3, bid=Decimal(100), ask=Decimal(101)),
        TopSample(ts=int(NOW) - 2, bid=Decimal(102), ask=Decimal(103)),
    ]


def test_the_history_spans_minutes_and_ends_half_an_hour_back():
    for ts in (NOW - TOP_HISTORY_S - 1, NOW - TOP_HISTORY_S, NOW - 61, NOW - 1, NOW + 5):
        sample(ts, "100", "101")

    history = top_history("BTC-USD", ["kraken"], NOW)

    expected = [int(NOW) - TOP_HISTORY_S, int(NOW) - 61, int(NOW) - 1]
    assert [s.ts for s in history["kraken"]] == expected


def test_each_venue_has_its_own_history_and_a_venue_without_samples_has_none():
    sample(NOW - 3, "100", "101", venue="kraken")
    sample(NOW - 2, "99.5", "100.5", venue="bitstamp")

    history = top_history("BTC-USD", ["kraken", "bitstamp", "quiet"], NOW)

    assert [s.mid for s in history["kraken"]] == [Decimal("100.5")]
    assert [s.mid for s in history["bitstamp"]] == [Decimal("100.0")]
    assert history["quiet"] == []
