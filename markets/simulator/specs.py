"""What the simulated venues are built from: each market's listings, each venue's behaviour, the
clocks, and the defaults `simulate_venues` serves."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

SATOSHI = Decimal("0.00000001")


def fixed(value: Decimal, places: Decimal | int) -> str:
    """`value` printed with `places` decimals, or as many as the increment `places` has."""
    if isinstance(places, Decimal):
        places = max(0, -places.as_tuple().exponent)
    return f"{value:.{places}f}"


@dataclass(frozen=True, slots=True)
class SimListing:
    """How one venue lists a market: its symbol, price tick, size lot and smallest order value."""

    symbol: str
    tick: Decimal
    lot: Decimal
    min_notional: Decimal = Decimal(0)

    def price_text(self, ticks: int, places: int | None = None) -> str:
        return fixed(ticks * self.tick, self.tick if places is None else places)

    def qty_text(self, lots: int, places: int | None = None) -> str:
        return fixed(lots * self.lot, self.lot if places is None else places)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One canonical market: starting mid, typical best-level size, and each venue's listing."""

    mid: Decimal
    size: Decimal
    listings: Mapping[str, SimListing]
    volatility_bps: float = 0.5  # standard deviation of the mid per market step


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """How a venue's books behave: cadence, staleness, noise around the mid, spread and depth."""

    interval: float  # seconds between book changes
    latency: float  # how far behind the shared mid the venue's view lags, seconds
    noise_bps: float  # spread of its mean-reverting offset from the shared mid
    half_spread_bps: float
    levels: int  # price levels per side
    span_bps: float  # distance from the best level to the deepest


@dataclass(frozen=True, slots=True)
class Timing:
    """Clock settings shared by all venues; tests shrink them to run in seconds."""

    market_interval: float = 0.1
    heartbeat: float = 1.0
    subscribe_timeout: float = 5.0
    binance_batch: float = 0.1
    binance_ping: float = 20.0
    binance_ping_timeout: float = 60.0
    kucoin_token_ttl: float = 24 * 3600.0
    kucoin_ping_interval: float = 18.0
    kucoin_ping_timeout: float = 10.0
    dislocation_every: tuple[float, float] = (10.0, 20.0)
    dislocation_for: tuple[float, float] = (1.0, 5.0)
    dislocation_bps: tuple[int, int] = (60, 120)


def _listings(*listings: SimListing) -> dict[str, SimListing]:
    return dict(zip(("coinbase", "kraken", "binance", "okx", "kucoin"), listings, strict=True))


DEFAULT_MARKETS: dict[str, MarketSpec] = {
    "BTC-USD": MarketSpec(
        mid=Decimal(60000),
        size=Decimal("0.5"),
        listings=_listings(
            SimListing("BTC-USD", Decimal("0.01"), SATOSHI),
            SimListing("BTC/USD", Decimal("0.1"), SATOSHI),
            SimListing("BTCUSDT", Decimal("0.01"), Decimal("0.00001")),
            SimListing("BTC-USDT", Decimal("0.1"), SATOSHI),
            SimListing("BTC-USDT", Decimal("0.1"), SATOSHI),
        ),
    ),
    "ETH-USD": MarketSpec(
        mid=Decimal(3000),
        size=Decimal(5),
        listings=_listings(
            SimListing("ETH-USD", Decimal("0.01"), SATOSHI),
            SimListing("ETH/USD", Decimal("0.01"), SATOSHI),
            SimListing("ETHUSDT", Decimal("0.01"), Decimal("0.0001")),
            SimListing("ETH-USDT", Decimal("0.01"), Decimal("0.000001")),
            SimListing("ETH-USDT", Decimal("0.01"), Decimal("0.0000001")),
        ),
    ),
}
DEFAULT_PROFILES: dict[str, VenueProfile] = {
    "coinbase": VenueProfile(0.1, 0.0, 2.0, 0.3, 50, 30.0),
    "kraken": VenueProfile(0.2, 0.05, 3.0, 0.8, 40, 40.0),
    "binance": VenueProfile(0.05, 0.02, 1.5, 0.2, 50, 25.0),
    "okx": VenueProfile(0.1, 0.02, 1.5, 0.3, 50, 25.0),
    "kucoin": VenueProfile(0.15, 0.03, 2.0, 0.4, 40, 30.0),
}
