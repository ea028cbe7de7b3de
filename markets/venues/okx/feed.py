"""OKX v5 public feed: the `books` channel into books, every frame verified by its CRC32.

Why `books`: the detector walks depth for VWAP, and `books` is the one public book channel with
depth (400 levels) and a checksum on every push. `books5` is 5 levels only, `bbo-tbt` one level,
and `books-l2-tbt` needs a logged-in VIP account.
"""

import zlib
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice

import orjson

from markets.book import Book, WireLevel, parse_level
from markets.venues.events import Send
from markets.venues.feed import NO_CHANGE, Feed

CHANNEL = "books"
CHECKSUM_LEVELS = 25


def parse_side(levels: list) -> list[WireLevel]:
    """Validate one side's [price, size, deprecated "0", order count] levels."""
    return [(*parse_level(level[0], level[1]), None) for level in levels]


def _texts(levels: Iterator[tuple[Decimal, Decimal]]) -> list[str]:
    # A Decimal keeps the exponent it was parsed with, so `format(d, "f")` gives back the wire
    # text ("1.44679", "2.00"): the checksum needs the exact strings, never a re-rounding.
    return [f"{price:f}:{size:f}" for price, size in islice(levels, CHECKSUM_LEVELS)]


def checksum(book: Book) -> int:
    """OKX's signed CRC32 over up to 25 levels a side, interleaved bid:ask, best first."""
    bids, asks = _texts(book.bids()), _texts(book.asks())
    parts = []
    for i in range(max(len(bids), len(asks))):
        parts += [side[i] for side in (bids, asks) if i < len(side)]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class OkxFeed(Feed):
    """One OKX public connection carrying `books` for many instruments."""

    idle_timeout = 15.0  # three pongs missed; OKX itself drops a socket after 30 s without data
    ping_interval = 5.0  # text "ping", answered "pong": a quiet book pushes nothing
    freeze_after = 7.0  # a pong at least every 5 s proves the socket lives

    def __init__(self, venue: str, url: str, symbols: dict[str, str]) -> None:
        super().__init__(venue, url, symbols)
        self.acked: set[str] = set()

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        symbols: list[str] = []
        for text in sent:
            msg = orjson.loads(text)
            if msg.get("op") != "subscribe":
                continue
            for arg in msg.get("args", []):
                if arg.get("channel") == CHANNEL and arg["instId"] not in symbols:
                    symbols.append(arg["instId"])
        return symbols, {}

    def subscribe_messages(self) -> list[str]:
        return [self._request("subscribe", list(self.markets))]

    @property
    def subscribed(self) -> bool:
        return len(self.acked) == len(self.markets)

    def ping_message(self) -> str:
        return "ping"

    def reset(self, reason: str) -> None:
        super().reset(reason)
        self.acked.clear()

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        self.stats.frames += 1
        if text == "pong":
            return NO_CHANGE
        try:
            msg = orjson.loads(text)
            event = msg.get("event")
        except (orjson.JSONDecodeError, AttributeError):
            return self.malformed("not a JSON object", text)
        if event is not None:
            return self._handle_event(event, msg, text)
        arg = msg.get("arg")
        if not isinstance(arg, dict) or arg.get("channel") != CHANNEL:
            self.stats.ignored += 1
            return NO_CHANGE
        return self._handle_book(msg, arg, text, received_ts)

    def _handle_event(self, event: str, msg: dict, text: str) -> tuple[str, ...]:
        if event == "error":
            return self.venue_error(text)
        if event == "subscribe":
            self.acked.add(msg.get("arg", {}).get("instId"))
        return NO_CHANGE

    def _handle_book(self, msg: dict, arg: dict, text: str, received_ts: float) -> list | tuple:
        try:
            market = self.markets[arg["instId"]]
            action = msg["action"]
            if action not in ("snapshot", "update"):
                raise ValueError(f"unknown action {action!r}")
            (data,) = msg["data"]
            bids, asks = parse_side(data["bids"]), parse_side(data["asks"])
            expected = data["checksum"]
            if type(expected) is not int:
                raise ValueError("checksum is not an integer")
            seq, prev = data.get("seqId"), data.get("prevSeqId")
            exchange_ts = int(data["ts"]) / 1000
        except (KeyError, TypeError, ValueError) as exc:
            return self.malformed(repr(exc), text)
        book = self.books[market]
        if action == "snapshot":
            book.load(bids, asks, seq)
        elif not book.valid:
            return NO_CHANGE  # waiting for the snapshot of a resubscription
        elif prev is not None and book.sequence is not None and prev != book.sequence:
            self.stats.gaps += 1
            self._resync(market, f"gap {book.sequence} -> {prev}")
            return [market]
        else:
            book.apply(bids, asks)
            book.sequence = seq
        self.stats.book_updates += 1
        self.stamp(book, exchange_ts, received_ts)
        if checksum(book) != expected:
            self.stats.checksum_failed += 1
            self._resync(market, "checksum mismatch")
        else:
            self.stats.checksum_ok += 1
            if book.crossed:
                self._resync(market, "crossed")
        return [market]

    def _resync(self, market: str, reason: str) -> None:
        """Invalidate one book and ask for a fresh snapshot: unsubscribe, then subscribe again."""
        self.books[market].invalidate(reason)
        self.stats.resyncs += 1
        symbol = [self.symbols[market]]
        self.actions.append(Send(self._request("unsubscribe", symbol)))
        self.actions.append(Send(self._request("subscribe", symbol)))

    def _request(self, op: str, symbols: list[str]) -> str:
        args = [{"channel": CHANNEL, "instId": symbol} for symbol in symbols]
        return orjson.dumps({"op": op, "args": args}).decode()
