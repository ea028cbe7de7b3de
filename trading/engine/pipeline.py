"""The hot path after a feed: changed books -> detector -> opportunity lifecycle events.

Pure of I/O, so the engine and `replay` run exactly the same code; the clock is passed in.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from markets.book import Book
from markets.core import COMPILED, TopGate
from markets.venues import VenueConfig, make_feed
from markets.venues.feed import Feed
from trading.detector import find_opportunities, top_factors
from trading.lifecycle import OpportunityEvent, OpportunityTracker


@dataclass(slots=True)
class Limits:
    """The detector's thresholds (the active risk profile's, or replay's options)."""

    min_profit_bps: Decimal = Decimal(0)
    max_notional: Decimal | None = None
    max_book_age_s: float = 2.0
    max_lag_s: float | None = None  # how late by the venue's clock a book may be; None: any


class Pipeline:
    """Every venue's books by market, the detector over them, and the lifecycle tracker."""

    def __init__(self, venues: Iterable[VenueConfig], limits: Limits | None = None) -> None:
        self.venues = {venue.slug: venue for venue in venues}
        self.limits = limits or Limits()
        self.feeds: dict[str, Feed] = {slug: make_feed(v) for slug, v in self.venues.items()}
        self.books: dict[str, dict[str, Book]] = {}
        for slug, feed in self.feeds.items():
            for market, book in feed.books.items():
                self.books.setdefault(market, {})[slug] = book
        self.fees = {slug: venue.taker_fee for slug, venue in self.venues.items()}
        self.lots = {market: {} for market in self.books}
        for slug, venue in self.venues.items():
            for market, lot in venue.lots.items():
                self.lots[market][slug] = lot
        self.tracker = OpportunityTracker()
        # Per market: the detector's memo of each venue pair's last depth walk (see
        # `find_opportunities`), so a pair whose books did not change is not walked again.
        self.memos: dict[str, dict] = {market: {} for market in self.books}
        # Markets whose last detection found a cross: the only ones with lifecycles open.
        self.crossing: set[str] = set()
        # Per market on compiled books: its top-of-book gate and the limits it was built for.
        self.gates: dict[str, tuple[Limits, object]] = {}

    def detect(
        self, markets: Iterable[str], now: float, venue: str | None = None
    ) -> list[OpportunityEvent]:
        """Run the detector on `markets` and return lifecycle events.

        A market with no cross open whose compiled gate says no pair passes the top-of-book
        prefilter is skipped: `find_opportunities` would return nothing and close nothing.
        (`venue`, the venue of the frame, is accepted for the callers; the gate reads every
        book.)
        """
        events: list[OpportunityEvent] = []
        limits = self.limits
        for market in markets:
            books = self.books[market]
            if len(books) < 2:
                continue  # a market on one venue only: its book is kept, nothing to cross
            if market not in self.crossing:
                gate = self._gate(market, limits)
                if gate is not None and not gate.crossable(
                    now, limits.max_book_age_s, limits.max_lag_s
                ):
                    continue
            crosses = find_opportunities(
                market,
                books,
                self.fees,
                self.lots[market],
                min_profit_bps=limits.min_profit_bps,
                max_book_age=limits.max_book_age_s,
                now=now,
                max_notional=limits.max_notional,
                max_lag=limits.max_lag_s,
                memo=self.memos[market],
            )
            events += self.tracker.observe_market(market, crosses, now)
            if crosses:
                self.crossing.add(market)
            else:
                self.crossing.discard(market)
        return events

    def _gate(self, market: str, limits: Limits) -> object | None:
        """`market`'s compiled top-of-book gate under `limits`; None when its books are not all
        compiled or a factor does not fit the gate (the detector's own prefilter then runs)."""
        kept = self.gates.get(market)
        if kept is not None and kept[0] is limits:
            return kept[1]
        gate = None
        books = self.books[market]
        if TopGate is not None and all(type(book) is COMPILED.Book for book in books.values()):
            factors = top_factors([self.fees[v] for v in books], limits.min_profit_bps)
            if factors is not None:
                gate = TopGate(list(books.values()), factors)
        self.gates[market] = (limits, gate)
        return gate

    def sweep(self, now: float) -> list[OpportunityEvent]:
        """Re-run every market so books that went stale without a frame close their crosses."""
        return self.detect(list(self.books), now)
