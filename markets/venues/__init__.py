"""Which venues the engine runs, how each venue's feed is built, and which venues trade live:
one row per venue module."""

import importlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from markets.venues.binance.feed import BinanceFeed
from markets.venues.coinbase.feed import CoinbaseFeed
from markets.venues.feed import Feed
from markets.venues.kraken.feed import KrakenFeed
from markets.venues.orders import Venue

if TYPE_CHECKING:
    from markets.models import Exchange

# Adding a venue is one folder in markets/venues/ and one row here (plus its Exchange row).
FEED_CLASSES: dict[str, type[Feed]] = {
    "coinbase": CoinbaseFeed,
    "kraken": KrakenFeed,
    "binance": BinanceFeed,
}
# The venues with an orders module, the only ones the desk can trade live. Imported when first
# asked for: an orders module loads ccxt and the models, which the feeds never need.
ORDER_MODULES: dict[str, str] = {
    "binance": "markets.venues.binance.orders",
}


class NotTradable(ValueError):
    """The venue has no orders module: the desk can watch it but not trade it live."""


def live_venue(exchange: "Exchange") -> Venue:
    """The live venue that places `exchange`'s orders, with its credential and REST URL."""
    module = ORDER_MODULES.get(exchange.slug)
    if module is None:
        raise NotTradable(
            f"{exchange.slug} has no orders module: the desk can watch it but not trade it live"
        )
    return importlib.import_module(module).LiveVenue.for_exchange(exchange)


@dataclass(slots=True)
class VenueConfig:
    """A venue as the engine needs it: plain values loaded once from the Exchange rows."""

    slug: str
    ws_url: str
    rest_url: str = ""
    taker_fee: Decimal = Decimal(0)  # fraction of notional
    symbols: dict[str, str] = field(default_factory=dict)  # market -> venue symbol
    lots: dict[str, Decimal] = field(default_factory=dict)  # market -> lot size
    exchange_id: int | None = None
    depth: int = 10


def make_feed(venue: VenueConfig) -> Feed:
    """Build the venue's feed object from its configuration."""
    feed_class = FEED_CLASSES[venue.slug]
    if feed_class is KrakenFeed:
        return KrakenFeed(venue.slug, venue.ws_url, venue.symbols, depth=venue.depth)
    if feed_class is BinanceFeed:
        return BinanceFeed(venue.slug, venue.ws_url, venue.symbols, venue.rest_url)
    return feed_class(venue.slug, venue.ws_url, venue.symbols)


def load_venues(
    exchanges: list[str] | None = None, symbols: list[str] | None = None
) -> list[VenueConfig]:
    """Read the enabled venues and their listings (a start-up read, never on the hot path)."""
    from markets.models import Exchange

    venues = []
    query = Exchange.objects.filter(enabled=True, slug__in=FEED_CLASSES).prefetch_related(
        "listings__market"
    )
    if exchanges:
        query = query.filter(slug__in=exchanges)
    for exchange in query:
        listings = [
            listing
            for listing in exchange.listings.all()
            if listing.enabled and (not symbols or listing.market.symbol in symbols)
        ]
        if not listings:
            continue
        venues.append(
            VenueConfig(
                slug=exchange.slug,
                ws_url=exchange.effective_ws_url(),
                rest_url=exchange.effective_rest_url(),
                taker_fee=exchange.taker_fee,
                symbols={item.market.symbol: item.venue_symbol for item in listings},
                lots={item.market.symbol: item.lot_size for item in listings},
                exchange_id=exchange.id,
            )
        )
    return venues
