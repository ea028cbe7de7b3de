"""One L2 order book per (venue, market): exact Decimal levels, best-first walks, integrity.

Pure: no Django, no I/O. Venue modules parse wire frames and call the `set_*`/`load` methods here.
This is the plain-Python reference: the engine's feeds run on the compiled core with the same
interface (`markets/core/_book.pyx`, see `markets.core`), and feeds that do not opt in run here.
"""

import re
import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice

# Bounds for "absurd" numbers: anything outside is a malformed frame, never a level.
MAX_PRICE = Decimal("1e12")
MAX_SIZE = Decimal("1e15")
ZERO = Decimal(0)
# A wire number is plain decimal text with at most 18 decimals: what the compiled core's fixed
# point holds exactly (`markets/core/_book.pyx`). Exponents, signs, spaces and `_` are malformed.
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]{1,18})?").fullmatch

Level = tuple[Decimal, Decimal]
# A parsed level as venue modules hand it over: price, size and (Kraken only) checksum fragment.
WireLevel = tuple[Decimal, Decimal, str | None]


# Validated price text -> Decimal. Prices repeat frame after frame, so a dict lookup replaces
# most `Decimal()` constructions and bound checks (sizes rarely repeat: they are parsed each time).
# Only valid prices go in, and the cache is emptied at `_CACHE_MAX` entries to bound memory.
_PRICES: dict[str, Decimal] = {}
_CACHE_MAX = 1 << 16


def parse_level(price: str, size: str) -> Level:
    """Return the exact (price, size) of one wire level; raise ValueError if it is absurd."""
    if type(price) is not str or type(size) is not str:
        raise ValueError(f"level must be text, got {price!r} {size!r}")
    p = _PRICES.get(price)
    try:
        if p is None:
            if not _PLAIN(price) or not _PLAIN(size):
                raise ValueError(f"not a plain number {price!r} {size!r}")
            p = Decimal(price)
            s = Decimal(size)
            # NaN fails here: ordering comparisons with NaN raise InvalidOperation; infinities
            # fail the bounds.
            ok = ZERO < p < MAX_PRICE and ZERO <= s < MAX_SIZE
            if ok:
                if len(_PRICES) >= _CACHE_MAX:
                    _PRICES.clear()
                _PRICES[price] = p
        else:
            if not _PLAIN(size):
                raise ValueError(f"not a plain number {price!r} {size!r}")
            s = Decimal(size)
            ok = ZERO <= s < MAX_SIZE
    except ArithmeticError as exc:
        raise ValueError(f"not a number {price!r} {size!r}") from exc
    if not ok:
        raise ValueError(f"absurd level {price!r} {size!r}")
    return p, s


def checksum_fragment(price: str, size: str) -> str:
    """Return a level's Kraken checksum text: wire price + qty, '.' removed, leading 0s stripped."""
    return price.replace(".", "").lstrip("0") + size.replace(".", "").lstrip("0")


class Book:
    """L2 book: price -> size per side, plus each side's prices in a sorted list.

    A plain list kept in order with `bisect` beats a tree here: books hold tens to a few thousand
    levels, most changes land near the top, and the best level is one index away.
    """

    __slots__ = (
        "_ask_prices",
        "_ask_text",
        "_asks",
        "_bid_prices",
        "_bid_text",
        "_bids",
        "depth",
        "exchange_ts",
        "invalid_reason",
        "lag",
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
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        # Both ascending: the best bid is the last price, the best ask the first.
        self._bid_prices: list[Decimal] = []
        self._ask_prices: list[Decimal] = []
        self._bid_text: dict[Decimal, str] = {}
        self._ask_text: dict[Decimal, str] = {}
        self.sequence: int | None = None
        self.exchange_ts: float | None = None
        self.received_ts: float | None = None
        # Seconds the last change reached us later than the venue's usual delay (Feed.stamp).
        self.lag = 0.0
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
        _set_level(self._bids, self._bid_prices, self._bid_text, price, size, text)

    def set_ask(self, price: Decimal, size: Decimal, text: str | None = None) -> None:
        """Set the ask at `price` to the absolute `size`; size 0 removes the level."""
        _set_level(self._asks, self._ask_prices, self._ask_text, price, size, text)

    def apply(self, bids: Iterable[WireLevel], asks: Iterable[WireLevel]) -> None:
        """Apply already-validated level changes in wire order, then truncate to depth."""
        # `_set_level` inlined: this loop runs once per level of every frame.
        for sizes, prices, texts, levels in (
            (self._bids, self._bid_prices, self._bid_text, bids),
            (self._asks, self._ask_prices, self._ask_text, asks),
        ):
            for price, size, text in levels:
                if size:
                    if price not in sizes:
                        insort(prices, price)
                    sizes[price] = size
                    if text is not None:
                        texts[price] = text
                elif sizes.pop(price, None) is not None:
                    del prices[bisect_left(prices, price)]
                    texts.pop(price, None)
        if self.depth is not None:
            self.truncate(self.depth)
        self.updates += 1

    def truncate(self, depth: int) -> None:
        """Drop levels beyond `depth` per side: Kraken sends no deletes for levels leaving scope."""
        prices = self._bid_prices
        if len(prices) > depth:
            cut = len(prices) - depth
            for price in prices[:cut]:
                del self._bids[price]
                self._bid_text.pop(price, None)
            del prices[:cut]
        prices = self._ask_prices
        if len(prices) > depth:
            for price in prices[depth:]:
                del self._asks[price]
                self._ask_text.pop(price, None)
            del prices[depth:]

    def clear(self) -> None:
        """Empty both sides (validity is left to the caller)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self._bid_text.clear()
        self._ask_text.clear()

    def invalidate(self, reason: str) -> None:
        """Mark the book unusable until the next snapshot; levels stay for inspection."""
        self.valid = False
        self.invalid_reason = reason

    def stamp(self, exchange_ts: float | None, received_ts: float, lag: float = 0.0) -> None:
        """Record when the change happened at the venue, when we received it, and how late."""
        self.exchange_ts = exchange_ts
        self.received_ts = received_ts
        self.lag = lag

    # -- reading the book --------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """Return (price, size) of the best bid, or None."""
        prices = self._bid_prices
        return (prices[-1], self._bids[prices[-1]]) if prices else None

    def best_ask(self) -> Level | None:
        """Return (price, size) of the best ask, or None."""
        prices = self._ask_prices
        return (prices[0], self._asks[prices[0]]) if prices else None

    def top_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """Return (best ask price, best bid price), None for an empty side: the detector's read."""
        asks, bids = self._ask_prices, self._bid_prices
        return (asks[0] if asks else None, bids[-1] if bids else None)

    @property
    def crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        bids, asks = self._bid_prices, self._ask_prices
        return bool(bids and asks) and bids[-1] >= asks[0]

    def bids(self) -> Iterator[Level]:
        """Yield (price, size) best (highest) first, for a depth walk."""
        prices = self._bid_prices
        # zip/map over the price list: the detector often takes just the first level.
        return zip(reversed(prices), map(self._bids.__getitem__, reversed(prices)), strict=True)

    def asks(self) -> Iterator[Level]:
        """Yield (price, size) best (lowest) first, for a depth walk."""
        prices = self._ask_prices
        return zip(prices, map(self._asks.__getitem__, prices), strict=True)

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
            "lag": self.lag,
            "valid": self.valid,
        }

    def checksum(self) -> int:
        """Kraken CRC32 over the wire text of the top 10 asks (ascending) then 10 bids (descending).

        Uses the fragments cached when each level was set, so no level is re-formatted here.
        """
        asks = "".join(map(self._ask_text.__getitem__, self._ask_prices[:10]))
        bids = "".join(map(self._bid_text.__getitem__, self._bid_prices[:-11:-1]))
        return zlib.crc32((asks + bids).encode())


def _set_level(
    sizes: dict[Decimal, Decimal],
    prices: list[Decimal],
    texts: dict[Decimal, str],
    price: Decimal,
    size: Decimal,
    text: str | None,
) -> None:
    """Set one side's level; the sorted price list changes only when a level comes or goes."""
    if size:
        if price not in sizes:
            insort(prices, price)
        sizes[price] = size
        if text is not None:
            texts[price] = text
    # Removing an unknown level is normal (Binance beyond the snapshot, repeated zeros).
    elif sizes.pop(price, None) is not None:
        del prices[bisect_left(prices, price)]
        texts.pop(price, None)
