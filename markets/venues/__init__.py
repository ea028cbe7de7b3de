"""How each venue's feed is built from its configuration: one row per venue folder."""

from dataclasses import dataclass, field
from decimal import Decimal

from markets.venues.binance.feed import BinanceFeed
from markets.venues.coinbase.feed import CoinbaseFeed
from markets.venues.feed import Feed
from markets.venues.kraken.feed import KrakenFeed
from markets.venues.kucoin.feed import KucoinFeed
from markets.venues.okx.feed import OkxFeed

# Adding a venue is one folder in markets/venues/ and one row here (plus its Exchange row).
FEED_CLASSES: dict[str, type[Feed]] = {
    "coinbase": CoinbaseFeed,
    "kraken": KrakenFeed,
    "binance": BinanceFeed,
    "okx": OkxFeed,
    "kucoin": KucoinFeed,
}


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
    wire_depth: int | None = None  # Kraken: a recording's subscribed depth, kept as it was


def make_feed(venue: VenueConfig) -> Feed:
    """Build the venue's feed object from its configuration."""
    feed_class = FEED_CLASSES[venue.slug]
    if feed_class is KrakenFeed:
        return KrakenFeed(
            venue.slug, venue.ws_url, venue.symbols, depth=venue.depth, wire_depth=venue.wire_depth
        )
    if feed_class in (BinanceFeed, KucoinFeed):
        return feed_class(venue.slug, venue.ws_url, venue.symbols, venue.rest_url)
    return feed_class(venue.slug, venue.ws_url, venue.symbols)
