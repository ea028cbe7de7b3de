"""The book cache: tops published by the engine, read back exact, aged by the venue's clock."""

import time
from decimal import Decimal

import pytest
from django.core.cache import caches

from markets.bookcache import book_age_s, publish_book, read_book

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_books():
    caches["books"].clear()


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


def test_a_lagging_books_age_counts_how_late_it_came_by_the_venues_clock():
    now = time.time()
    publish_book(top(received_ts=now - 0.5, lag=3.0))

    age = book_age_s(read_book("kraken", "BTC-USD"), now)

    assert age == pytest.approx(3.5)


def test_a_book_published_before_lag_was_recorded_ages_by_receive_time():
    now = time.time()
    book = {**top(received_ts=now - 0.5), "lag": None}

    assert book_age_s(book, now) == pytest.approx(0.5)
