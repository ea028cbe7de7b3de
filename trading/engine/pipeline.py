"""The hot path after a feed: changed books -> detector -> opportunity lifecycle events.

Pure of I/O, so the engine and `replay` run exactly the same code; the clock is passed in.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from markets.book import Book
from markets.venues import VenueConfig, make_feed
from markets.venues.feed import Feed
from trading.detector import find_opportunities, pair_scan
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
        # Per market: its compiled pair scan (or None) and the limits it was built for.
        self.scans: dict[str, tuple[Limits, object | None]] = {}

    def detect(
        self, markets: Iterable[str], now: float, venue: str | None = None
    ) -> list[OpportunityEvent]:
        """Run the detector on `markets` and return lifecycle events.

        On compiled books a market's compiled pair scan runs (`trading.detector.pair_scan`:
        the top-of-book prefilter, the walks, each pair's walk memo); a market where it finds
        nothing and no cross is open has nothing to close and is done. (`venue`, the venue of
        the frame, is accepted for the callers; the scan reads every book.)
        """
        events: list[OpportunityEvent] = []
        limits = self.limits
        crossing = self.crossing
        for market in markets:
            kept = self.scans.get(market)
            scan = kept[1] if kept is not None and kept[0] is limits else self._scan(market, limits)
            if scan is not None:
                crosses = scan.scan(now, limits.max_book_age_s, limits.max_lag_s)
                if not crosses and market not in crossing:
                    continue
            else:
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
                    max_lag=limits.max_lag_s,
                    memo=self.memos[market],
                )
            events += self.tracker.observe_market(market, crosses, now)
            if crosses:
                crossing.add(market)
            else:
                crossing.discard(market)
        return events

    def _scan(self, market: str, limits: Limits) -> object | None:
        """`market`'s compiled pair scan under `limits`, kept until they change; None when its
        books are not all compiled, it is on one venue, or a number does not fit the scan
        (`find_opportunities` then runs, with its `Decimal` prefilter and memo)."""
        books = self.books[market]
        scan = None
        if len(books) >= 2:
            scan = pair_scan(
                market,
                books,
                self.fees,
                self.lots[market],
                limits.min_profit_bps,
                limits.max_notional,
            )
        self.scans[market] = (limits, scan)
        return scan

    def sweep(self, now: float) -> list[OpportunityEvent]:
        """Re-run every market so books that went stale without a frame close their crosses."""
        return self.detect(list(self.books), now)
