"""One L2 order book per (venue, market): exact Decimal levels, best-first walks, integrity.

Pure: no Django, no I/O. Venue modules parse wire frames and call the `set_*`/`load` methods here.
"""

import zlib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice

from sortedcontainers import SortedDict

# Bounds for "absurd" numbers: anything outside is a malformed frame, never a level.
MAX_PRICE = Decimal("1e12")
MAX_SIZE = Decimal("1e15")
ZERO = Decimal(0)

Level = tuple[Decimal, Decimal]
# A parsed level as venue modules hand it over: price, size and (Kraken only) checksum fragment.
WireLevel = tuple[Decimal, Decimal, str | None]


def parse_level(price: str, size: str) -> Level:
    """Return the exact (price, size) of one wire level; raise ValueError if it is absurd."""
    if type(price) is not str or type(size) is not str:
        raise ValueError(f"level must be text, got {price!r} {size!r}")
    try:
        p = Decimal(price)
        s = Decimal(size)
        # NaN fails here: ordering comparisons with NaN raise InvalidOperation; infinities fail
        # the bounds.
        ok = ZERO < p < MAX_PRICE and ZERO <= s < MAX_SIZE
    except ArithmeticError as exc:
        raise ValueError(f"not a number {price!r} {size!r}") from exc
    if not ok:
        raise ValueError(f"absurd level {price!r} {size!r}")
    return p, s


def checksum_fragment(price: str, size: str) -> str:
    """Return a level's Kraken checksum text: wire price + qty, '.' removed, leading 0s stripped."""
    return price.replace(".", "").lstrip("0") + size.replace(".", "").lstrip("0")


class Book:
    """L2 book: price -> size per side, kept sorted so the best level is at hand in O(1)."""

    __slots__ = (
        "_ask_text",
        "_asks",
        "_bid_text",
        "_bids",
        "depth",
        "exchange_ts",
        "invalid_reason",
        "market",
        "received_ts",
        "sequence",
        "updates",
        "valid",
        "venue",
    )

    def __init__(self, venue: str, market: str, depth: int | None = None) -> None:
        self.venue = venue
        self.market = market
        self.depth = depth
        # Both sides ascending; bids are read from the end, so best bid is peekitem(-1).
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._bid_text: dict[Decimal, str] = {}
        self._ask_text: dict[Decimal, str] = {}
        self.sequence: int | None = None
        self.exchange_ts: float | None = None
        self.received_ts: float | None = None
        self.updates = 0
        self.valid = False
        self.invalid_reason: str | None = "no snapshot yet"

    # -- changing the book -------------------------------------------------------------------

    def load(
        self,
        bids: Iterable[WireLevel],
        asks: Iterable[WireLevel],
        sequence: int | None = None,
    ) -> None:
        """Replace the whole book with a snapshot and mark it valid."""
        self.clear()
        for price, size, text in bids:
            self.set_bid(price, size, text)
        for price, size, text in asks:
            self.set_ask(price, size, text)
        self.sequence = sequence
        self.valid = True
        self.invalid_reason = None

    def set_bid(self, price: Decimal, size: Decimal, text: str | None = None) -> None:
        """Set the bid at `price` to the absolute `size`; size 0 removes the level."""
        if size:
            self._bids[price] = size
            if text is not None:
                self._bid_text[price] = text
        else:
            # Removing an unknown level is normal (Binance beyond the snapshot, repeated zeros).
            self._bids.pop(price, None)
            self._bid_text.pop(price, None)

    def set_ask(self, price: Decimal, size: Decimal, text: str | None = None) -> None:
        """Set the ask at `price` to the absolute `size`; size 0 removes the level."""
        if size:
            self._asks[price] = size
            if text is not None:
                self._ask_text[price] = text
        else:
            self._asks.pop(price, None)
            self._ask_text.pop(price, None)

    def apply(self, bids: Iterable[WireLevel], asks: Iterable[WireLevel]) -> None:
        """Apply already-validated level changes in wire order, then truncate to depth."""
        for price, size, text in bids:
            self.set_bid(price, size, text)
        for price, size, text in asks:
            self.set_ask(price, size, text)
        if self.depth is not None:
            self.truncate(self.depth)
        self.updates += 1

    def truncate(self, depth: int) -> None:
        """Drop levels beyond `depth` per side: Kraken sends no deletes for levels leaving scope."""
        bids, asks = self._bids, self._asks
        while len(bids) > depth:
            price, _ = bids.popitem(0)
            self._bid_text.pop(price, None)
        while len(asks) > depth:
            price, _ = asks.popitem(-1)
            self._ask_text.pop(price, None)

    def clear(self) -> None:
        """Empty both sides (validity is left to the caller)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_text.clear()
        self._ask_text.clear()

    def invalidate(self, reason: str) -> None:
        """Mark the book unusable until the next snapshot; levels stay for inspection."""
        self.valid = False
        self.invalid_reason = reason

    def stamp(self, exchange_ts: float | None, received_ts: float) -> None:
        """Record when the change happened at the venue and when we received it."""
        self.exchange_ts = exchange_ts
        self.received_ts = received_ts

    # -- reading the book --------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """Return (price, size) of the best bid, or None."""
        return self._bids.peekitem(-1) if self._bids else None

    def best_ask(self) -> Level | None:
        """Return (price, size) of the best ask, or None."""
        return self._asks.peekitem(0) if self._asks else None

    @property
    def crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        bids, asks = self._bids, self._asks
        return bool(bids and asks) and bids.keys()[-1] >= asks.keys()[0]

    def bids(self) -> Iterator[Level]:
        """Yield (price, size) best (highest) first, for a depth walk."""
        return reversed(self._bids.items())

    def asks(self) -> Iterator[Level]:
        """Yield (price, size) best (lowest) first, for a depth walk."""
        return iter(self._asks.items())

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def top(self, n: int = 10) -> dict:
        """Return a plain snapshot of the best `n` levels per side with the book's stamps."""
        return {
            "venue": self.venue,
            "market": self.market,
            "bids": list(islice(self.bids(), n)),
            "asks": list(islice(self.asks(), n)),
            "sequence": self.sequence,
            "exchange_ts": self.exchange_ts,
            "received_ts": self.received_ts,
            "valid": self.valid,
        }

    def checksum(self) -> int:
        """Kraken CRC32 over the wire text of the top 10 asks (ascending) then 10 bids (descending).

        Uses the fragments cached when each level was set, so no level is re-formatted here.
        """
        ask_text, bid_text = self._ask_text, self._bid_text
        parts = [ask_text[p] for p in self._asks.keys()[:10]]
        parts += [bid_text[p] for p in self._bids.keys()[-1:-11:-1]]
        return zlib.crc32("".join(parts).encode())
