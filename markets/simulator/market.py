"""The simulated market model: one shared random-walk mid per market with its dislocation
schedule, and each venue's quotes of it (its own noise, latency and book)."""

import random
from collections import deque
from decimal import Decimal

from markets.simulator.book import Change, SimBook
from markets.simulator.specs import MarketSpec, Timing, VenueProfile

# The shared mid is an integer count of this unit, so every venue's tick divides it exactly.
UNIT = Decimal("0.00000001")


class SimMarket:
    """The shared random-walk mid of one canonical market and its dislocation schedule."""

    def __init__(self, spec: MarketSpec, rng: random.Random, timing: Timing, start: float) -> None:
        self.spec = spec
        self.rng = rng
        self.timing = timing
        self.start = start
        self.anchor = int(spec.mid / UNIT)
        self.history: deque[int] = deque([self.anchor], maxlen=256)
        self.steps = 0
        self.dislocation: tuple[str, int, int] | None = None  # venue, signed bps, last step
        self.next_dislocation = self._steps(timing.dislocation_every)

    def mid(self, now: float, latency: float) -> int:
        """The mid in UNITs as a venue `latency` seconds behind sees it at `now`."""
        target = int((now - self.start) / self.timing.market_interval)
        while self.steps < target:
            self._step()
        lag = int(latency / self.timing.market_interval)
        return self.history[max(0, len(self.history) - 1 - lag)]

    def offset_bps(self, venue: str) -> int:
        """How far the current dislocation pushes `venue` off the mid (0: not that venue)."""
        if self.dislocation and self.dislocation[0] == venue:
            return self.dislocation[1]
        return 0

    def _steps(self, seconds: tuple[float, float]) -> int:
        return max(1, round(self.rng.uniform(*seconds) / self.timing.market_interval))

    def _step(self) -> None:
        self.steps += 1
        mid = self.history[-1]
        # A weak pull to the start keeps long demo runs near the configured price.
        drift = (self.anchor - mid) / 2000
        shock = mid * self.spec.volatility_bps / 10_000 * self.rng.gauss(0, 1)
        self.history.append(max(1, mid + round(drift + shock)))
        if self.dislocation and self.steps > self.dislocation[2]:
            self.dislocation = None
            self.next_dislocation = self.steps + self._steps(self.timing.dislocation_every)
        if self.dislocation is None and self.steps >= self.next_dislocation:
            venue = self.rng.choice(sorted(self.spec.listings))
            bps = self.rng.randint(*self.timing.dislocation_bps) * self.rng.choice((-1, 1))
            self.dislocation = (venue, bps, self.steps + self._steps(self.timing.dislocation_for))


class VenueBook:
    """One market as one venue quotes it: the shared mid plus its own noise and dislocation."""

    def __init__(self, venue: str, market: SimMarket, profile: VenueProfile, seed: str) -> None:
        self.venue = venue
        self.market = market
        self.profile = profile
        self.listing = market.spec.listings[venue]
        self.rng = random.Random(seed)
        self.noise = 0.0
        self.tick_units = int(self.listing.tick / UNIT)
        self.book = SimBook(self.rng, profile, max(1, int(market.spec.size / self.listing.lot)))

    @property
    def symbol(self) -> str:
        return self.listing.symbol

    def step(self, now: float) -> list[Change]:
        """Move the book after the mid as this venue sees it at `now`; return what changed."""
        # AR(1): the venue wanders around the shared mid but never far.
        self.noise = 0.9 * self.noise + self.rng.gauss(0, self.profile.noise_bps * 0.436)
        mid = self.market.mid(now, self.profile.latency)
        bps = self.noise + self.market.offset_bps(self.venue)
        return self.book.step(round(mid * (1 + bps / 10_000)) // self.tick_units)

    def best(self) -> tuple[Decimal, Decimal]:
        """Best bid and ask prices, for oracles in tests and demos."""
        tick = self.listing.tick
        return max(self.book.bids) * tick, min(self.book.asks) * tick
