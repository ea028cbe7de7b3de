"""The venues that trade live: one orders module each, and the refusal for the rest."""

from markets.models import Exchange
from markets.venues.binance.orders import LiveVenue as BinanceVenue
from markets.venues.coinbase.orders import LiveVenue as CoinbaseVenue
from markets.venues.kraken.orders import LiveVenue as KrakenVenue
from markets.venues.kucoin.orders import LiveVenue as KucoinVenue
from markets.venues.orders import Venue

# Adding a live venue is its `orders.py` and one row here; a venue without one can be watched only.
ORDER_CLASSES: dict[str, type[BinanceVenue | CoinbaseVenue | KrakenVenue | KucoinVenue]] = {
    "binance": BinanceVenue,
    "coinbase": CoinbaseVenue,
    "kraken": KrakenVenue,
    "kucoin": KucoinVenue,
}


class NotTradable(ValueError):
    """The venue has no orders module: the desk can watch it but not trade it live."""


def live_venue(exchange: Exchange) -> Venue:
    """The live venue that places `exchange`'s orders, with its credential and REST URL."""
    venue_class = ORDER_CLASSES.get(exchange.slug)
    if venue_class is None:
        raise NotTradable(
            f"{exchange.slug} has no orders module: the desk can watch it but not trade it live"
        )
    return venue_class.for_exchange(exchange)
