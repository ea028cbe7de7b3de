"""The hot path after a feed: changed books -> detector -> opportunity lifecycle events.

Pure of I/O, so the engine and `replay` run exactly the same code; the clock is passed in.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from markets.book import Book
from markets.venues import VenueConfig, make_feed
from markets.venues.feed import Feed
from trading.detector import find_opportunities, top_products
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
        # Per market with nothing crossing at the last detection: the limits it ran under and,
        # per venue that took part, its best ask and bid and their prefilter products. See `_quiet`.
        self.quiet: dict[str, tuple[Limits, dict[str, tuple]]] = {}

    def detect(
        self, markets: Iterable[str], now: float, venue: str | None = None
    ) -> list[OpportunityEvent]:
        """Run the detector on `markets` and return lifecycle events.

        `venue`, when given, is the one venue whose books changed (a frame's), which lets a market
        that was quiet and whose top prices on that venue did not move skip detection.
        """
        events: list[OpportunityEvent] = []
        limits = self.limits
        for market in markets:
            books = self.books[market]
            if len(books) < 2:
                continue  # a market on one venue only: its book is kept, nothing to cross
            if venue is not None and self._quiet(market, venue, limits):
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
            tops = None if crosses else self._tops(books, now)
            if tops is None:
                self.quiet.pop(market, None)
            else:
                self.quiet[market] = (limits, tops)
        return events

    def _quiet(self, market: str, venue: str, limits: Limits) -> bool:
        """True when detection would find nothing again, so it can be skipped.

        The last detection of `market` found no cross (so none is open) under the same limits,
        and `venue` took part in it. Every other venue's best prices are as they were then (a
        change to them is a frame of theirs, and detection after it), and a book that went
        invalid or stale since only drops out. So the prefilter that said no then says no now if
        `venue`'s top did not move, or if it moved but its new best bid still reaches no other
        venue's best ask after fees, nor its new best ask any other's bid: the same exact
        comparisons `find_opportunities` makes, against the other venues' products kept from
        then. Depth below the top does not matter when no top pair pays.
        """
        last = self.quiet.get(market)
        if last is None or last[0] is not limits:
            return False
        book = self.books[market][venue]
        tops = last[1]
        known = tops.get(venue)
        if known is None or not book.valid:
            return False
        if book.top_prices() == known[:2]:
            return True
        top = self._top(venue, book, tops)
        if top is None:
            return False
        tops[venue] = top
        return True

    def _tops(self, books: dict[str, Book], now: float) -> dict[str, tuple] | None:
        """Each valid, fresh book's best ask and bid and their prefilter products (see `_quiet`).

        The venues the detector just used, as it saw them; None when a pair of them passes the
        prefilter (a walk that found no size, under a lot, say, may find some after a change in
        size alone, so the market is not quiet).
        """
        max_age, max_lag = self.limits.max_book_age_s, self.limits.max_lag_s
        tops: dict[str, tuple] = {}
        for venue, book in books.items():
            received = book.received_ts
            if max_lag is not None and book.lag > max_lag:
                continue
            if book.valid and received is not None and now - received <= max_age:
                top = self._top(venue, book, tops)
                if top is None:
                    return None
                tops[venue] = top
        return tops

    def _top(self, venue: str, book: Book, tops: dict[str, tuple]) -> tuple | None:
        """`venue`'s best ask and bid and their prefilter products; None if they pay against
        another venue's in `tops`."""
        best_ask, best_bid = book.top_prices()
        products = top_products(best_ask, best_bid, self.fees[venue], self.limits.min_profit_bps)
        return None if _pays_against(venue, *products, tops) else (best_ask, best_bid, *products)

    def sweep(self, now: float) -> list[OpportunityEvent]:
        """Re-run every market so books that went stale without a frame close their crosses."""
        return self.detect(list(self.books), now)


def _pays_against(
    venue: str, ask_cost: Decimal | None, bid_value: Decimal | None, tops: dict[str, tuple]
) -> bool:
    """Whether `venue`'s top (its prefilter products) pays against another venue's in `tops`.

    Buying on `venue` pays at the top when another's bid value reaches its ask cost; selling on
    it when its bid value reaches another's ask cost (`trading.detector.top_products`).
    """
    for other, (_, _, other_cost, other_value) in tops.items():
        if other == venue:
            continue
        if bid_value is not None and other_cost is not None and bid_value >= other_cost:
            return True
        if ask_cost is not None and other_value is not None and other_value >= ask_cost:
            return True
    return False
