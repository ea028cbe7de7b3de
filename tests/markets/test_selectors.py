"""Which listings enter a market for the engine: one quoted in another currency (USDT in a USD
market) only where the desk marked it interchangeable, and never left out without a word."""

import importlib
import logging

import pytest
from django.apps import apps

from markets.selectors import load_venues
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory

pytestmark = pytest.mark.django_db


def listed(slug: str, venue_symbol: str, **fields):
    return ListingFactory(
        exchange=ExchangeFactory(slug=slug),
        market=MarketFactory(symbol="BTC-USD"),
        venue_symbol=venue_symbol,
        **fields,
    )


def markets_by_venue() -> dict[str, list[str]]:
    return {venue.slug: sorted(venue.symbols) for venue in load_venues()}


def test_a_listing_in_the_markets_own_quote_enters_it():
    listed("coinbase", "BTC-USD")

    assert markets_by_venue() == {"coinbase": ["BTC-USD"]}


def test_a_listing_quoted_in_usdt_enters_a_usd_market_only_when_marked_interchangeable():
    listed("kucoin", "BTC-USDT", quote_currency="USDT", quote_interchangeable=True)
    listed("okx", "BTC-USDT", quote_currency="USDT")

    assert markets_by_venue() == {"kucoin": ["BTC-USD"]}


def test_a_listing_left_out_for_its_quote_is_named_in_the_log(caplog):
    listed("okx", "BTC-USDC", quote_currency="USDC")

    with caplog.at_level(logging.WARNING, logger="markets.selectors"):
        load_venues()

    assert "okx BTC-USDC quotes in USDC, not BTC-USD's USD" in caplog.text
    assert "not marked interchangeable" in caplog.text


def test_a_quote_currency_equal_to_the_markets_needs_no_flag():
    listing = listed("kraken", "BTC/USD", quote_currency="USD")

    assert listing.foreign_quote == "" and listing.crosses_in_market
    assert markets_by_venue() == {"kraken": ["BTC-USD"]}


def test_the_migration_writes_down_the_stablecoin_listings_that_already_crossed():
    migration = importlib.import_module("markets.migrations.0008_listing_quote_currency")
    binance = listed("binance", "BTCUSDT")
    coinbase = listed("coinbase", "BTC-USD")

    migration.write_down_stablecoin_quotes(apps, None)

    binance.refresh_from_db()
    coinbase.refresh_from_db()
    assert (binance.quote_currency, binance.quote_interchangeable) == ("USDT", True)
    assert (coinbase.quote_currency, coinbase.quote_interchangeable) == ("", False)
