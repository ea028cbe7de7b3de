"""The engine's published books: top levels per (venue, market), read by workers and pages,
and a bounded history of each book's best bid and ask, sampled as it is published.

Redis in the full stack, in-process memory on the embedded default (the "books" cache).
"""

import time
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import caches
from redis.exceptions import RedisError

BOOK_TTL_S = 60
# The market page's price chart: each book's top, at most once a second, for the last half
# hour, in one cache entry per (venue, market, minute) that expires on its own.
TOP_HISTORY_S = 30 * 60
_MINUTE = 60


class BookCacheUnavailable(Exception):
    """The book cache did not answer (Redis down in the full stack): no book can be read now."""


def _key(venue: str, market: str) -> str:
    return f"book:{venue}:{market}"


def publish_book(top: dict) -> None:
    """Store a book's top levels as `Book.top()` returns them, stamped with the publish time."""
    payload = {
        **top,
        "bids": [[str(p), str(s)] for p, s in top["bids"]],
        "asks": [[str(p), str(s)] for p, s in top["asks"]],
        "published_ts": time.time(),
    }
    caches["books"].set(_key(top["venue"], top["market"]), payload, timeout=BOOK_TTL_S)
    if top.get("valid", True) and top["bids"] and top["asks"]:
        record_top(top["venue"], top["market"], top["bids"][0][0], top["asks"][0][0], time.time())


def read_book(venue: str, market: str) -> dict | None:
    """Return the last published book with Decimal levels, or None if none is fresh enough.

    Raises BookCacheUnavailable when the cache does not answer, which is not "no book".
    """
    return read_books([venue], market)[venue]


def read_books(venues: list[str], market: str) -> dict[str, dict | None]:
    """`read_book` of each of `venues` for `market`, in one round trip to the cache."""
    keys = {_key(venue, market): venue for venue in venues}
    try:
        payloads = caches["books"].get_many(list(keys))
    except RedisError as exc:
        raise BookCacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return {venue: _decoded(payloads.get(key)) for key, venue in keys.items()}


def _decoded(payload: dict | None) -> dict | None:
    if payload is None:
        return None
    return {
        **payload,
        "bids": [(Decimal(p), Decimal(s)) for p, s in payload["bids"]],
        "asks": [(Decimal(p), Decimal(s)) for p, s in payload["asks"]],
    }


def book_age_s(book: dict, now: float | None = None) -> float:
    """Seconds since the venue's data in `book` was current: since we received it, plus how
    late by the venue's clock it came (its lag), so a lagging venue's book counts as old."""
    received = book.get("received_ts") or book["published_ts"]
    return (now or time.time()) - received + (book.get("lag") or 0.0)


@dataclass(frozen=True, slots=True)
class TopSample:
    """A book's best bid and ask at second `ts` (Unix time)."""

    ts: int
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


# The second each book was last sampled by this process: the engine, the one writer, reads and
# writes a book's history once a second, not on each of its four publishes a second.
_sampled: dict[tuple[str, str], int] = {}


def _history_key(venue: str, market: str, minute: int) -> str:
    return f"tops:{venue}:{market}:{minute}"


def record_top(venue: str, market: str, bid: Decimal, ask: Decimal, now: float) -> None:
    """Add (bid, ask) to the book's history at second `now`, unless it has one for that second
    (a book is published up to four times a second; the chart needs one)."""
    second = int(now)
    if _sampled.get((venue, market)) == second:
        return
    _sampled[(venue, market)] = second
    key = _history_key(venue, market, second // _MINUTE)
    books = caches["books"]
    samples = books.get(key) or []
    if samples and samples[-1][0] >= second:
        return
    samples.append([second, str(bid), str(ask)])
    books.set(key, samples, timeout=TOP_HISTORY_S + _MINUTE)


def top_history(market: str, venues: list[str], now: float) -> dict[str, list[TopSample]]:
    """Each venue's sampled tops of `market` over the last TOP_HISTORY_S before `now`, oldest
    first (a venue without samples maps to []). Raises BookCacheUnavailable like read_book."""
    since = int(now) - TOP_HISTORY_S
    minutes = range(since // _MINUTE, int(now) // _MINUTE + 1)
    keys = {(v, m): _history_key(v, market, m) for v in venues for m in minutes}
    try:
        found = caches["books"].get_many(keys.values())
    except RedisError as exc:
        raise BookCacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
    history: dict[str, list[TopSample]] = {}
    for venue in venues:
        history[venue] = [
            TopSample(ts=ts, bid=Decimal(bid), ask=Decimal(ask))
            for minute in minutes
            for ts, bid, ask in found.get(keys[(venue, minute)], [])
            if since <= ts <= now
        ]
    return history
