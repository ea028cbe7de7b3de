"""The hot path after a feed: changed books -> detector -> opportunity lifecycle events.

Pure of I/O, so the engine and `replay` run exactly the same code; the clock is passed in.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from markets.book import Book
from markets.feeds import Feed
from markets.venues import VenueConfig, make_feed
from trading.detector import find_opportunities
from trading.lifecycle import OpportunityEvent, OpportunityTracker


@dataclass(slots=True)
class Limits:
    """The detector's thresholds (the active risk profile's, or replay's options)."""

    min_profit_bps: Decimal = Decimal(0)
    max_notional: Decimal | None = None
    max_book_age_s: float = 2.0


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

    def detect(self, markets: Iterable[str], now: float) -> list[OpportunityEvent]:
        """Run the detector on `markets` (whose books changed) and return lifecycle events."""
        events: list[OpportunityEvent] = []
        limits = self.limits
        for market in markets:
            books = self.books[market]
            if len(books) < 2:
                continue  # a market on one venue only: its book is kept, nothing to cross
            crosses = find_opportunities(
                market,
                books,
                self.fees,
                self.lots[market],
                min_profit_bps=limits.min_profit_bps,
                max_book_age=limits.max_book_age_s,
                now=now,
                max_notional=limits.max_notional,
                memo=self.memos[market],
            )
            events += self.tracker.observe_market(market, crosses, now)
        return events

    def sweep(self, now: float) -> list[OpportunityEvent]:
        """Re-run every market so books that went stale without a frame close their crosses."""
        return self.detect(list(self.books), now)
