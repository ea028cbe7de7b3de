"""Page fixtures: a viewer logged in, two venues listing BTC-USD, and their published books."""

import time
from decimal import Decimal

import pytest
from django.core.cache import cache, caches

from arbsite.roles import VIEWER
from markets.bookcache import publish_book
from markets.heartbeat import ENGINE_HEARTBEAT_KEY
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory


@pytest.fixture
def empty_caches():
    """Books and the heartbeat live in caches that outlive a test's transaction."""
    caches["books"].clear()
    cache.delete(ENGINE_HEARTBEAT_KEY)


@pytest.fixture
def book(empty_caches):
    """Publish a two-level book for a venue, as the engine does."""

    def publish(venue: str, bid: str, ask: str, *, market: str = "BTC-USD", valid=True) -> None:
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

    return publish


@pytest.fixture
def venues(db, empty_caches):
    """Cheap and Dear, 10 bps taker fee each, both listing BTC-USD."""
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
