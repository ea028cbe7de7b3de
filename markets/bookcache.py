"""The engine's published books: top levels per (venue, market), read by workers and pages.

Redis in the full stack, in-process memory on the embedded default (the "books" cache).
"""

import time
from decimal import Decimal

from django.core.cache import caches
from redis.exceptions import RedisError

BOOK_TTL_S = 60


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


def read_book(venue: str, market: str) -> dict | None:
    """Return the last published book with Decimal levels, or None if none is fresh enough.

    Raises BookCacheUnavailable when the cache does not answer, which is not "no book".
    """
    try:
        payload = caches["books"].get(_key(venue, market))
    except RedisError as exc:
        raise BookCacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
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
