"""OKX as the simulated venue serves it: v5 public WebSocket market data, the `books` channel
with a snapshot per subscription, then updates carrying seqId/prevSeqId and the CRC32 checksum,
and text `ping` answered `pong`."""

import json
import time
import zlib
from collections.abc import Mapping
from decimal import Decimal

from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import Timing
from markets.simulator.venue import Session, SimVenue

PATH = "/okx/ws/v5/public"
CHECKSUM_LEVELS = 25


def okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX's signed CRC32: best-first (price, size) texts, 25 a side, interleaved bid then ask."""
    bids, asks = bids[:CHECKSUM_LEVELS], asks[:CHECKSUM_LEVELS]
    parts = []
    for i in range(max(len(bids), len(asks))):
        for side in (bids, asks):
            if i < len(side):
                parts += side[i]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _json(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class SimOkx(SimVenue):
    """OKX on `/okx/ws/v5/public`: per-instrument acks and snapshots, then checked updates."""

    name = "okx"
    malformed = '{"arg":{"channel":"books","instId":'
    one_shots = ("gap", "bad_checksum")

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.seq_ids = {s: b.rng.randint(10**9, 10**10) for s, b in self.books.items()}

    def open_account(
        self, api_key: str, secret: str, funding: Mapping[str, Decimal], passphrase: str = ""
    ) -> None:
        """Nothing to open: the simulated OKX serves market data only, as the desk watches OKX."""

    def holdings(self, api_key: str) -> dict[str, Decimal]:
        return {}

    def streams(self, path: str) -> bool:
        return path == PATH

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        async for raw in session.ws:
            self._receive(session, raw)

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        symbol = book.symbol
        prev = self.seq_ids[symbol]
        self.seq_ids[symbol] = seq = prev + 1
        bids = [(p, q) for side, p, q in changes if side == "bid"]
        asks = [(p, q) for side, p, q in changes if side == "ask"]
        checksum = self._checksum(book)
        frame = self._frame("update", book, bids, asks, checksum, seq, prev)
        for session in self.sessions:
            if symbol not in session.subs or session.take("gap", symbol):
                continue
            if session.take("bad_checksum", symbol):
                session.send(self._frame("update", book, bids, asks, ~checksum, seq, prev))
            else:
                session.send(frame)

    def _frame(self, action, book, bids, asks, checksum: int, seq: int, prev: int) -> str:
        def levels(side: list[tuple[int, int]]) -> list[list[str]]:
            listing = book.listing
            return [[listing.price_text(p), listing.qty_text(q), "0", "1"] for p, q in side]

        data = {
            "asks": levels(asks),
            "bids": levels(bids),
            "ts": str(time.time_ns() // 1_000_000),
            "checksum": checksum,
            "prevSeqId": prev,
            "seqId": seq,
        }
        arg = {"channel": "books", "instId": book.symbol}
        message = {"arg": arg, "action": action, "data": [data]}
        return _json(message)

    @staticmethod
    def _top(book: VenueBook, side: str) -> list[tuple[int, int]]:
        levels = book.book.side(side)
        return [(p, levels[p]) for p in best_first(levels, side)]

    def _checksum(self, book: VenueBook) -> int:
        listing = book.listing

        def texts(side: str) -> list[tuple[str, str]]:
            top = self._top(book, side)[:CHECKSUM_LEVELS]
            return [(listing.price_text(p), listing.qty_text(q)) for p, q in top]

        return okx_checksum(texts("bid"), texts("ask"))

    def _snapshot(self, book: VenueBook) -> str:
        bids, asks = self._top(book, "bid"), self._top(book, "ask")
        seq = self.seq_ids[book.symbol]
        return self._frame("snapshot", book, bids, asks, self._checksum(book), seq, -1)

    def _receive(self, session: Session, raw: str | bytes) -> None:
        if raw == "ping":
            return session.send("pong")
        try:
            message = json.loads(raw)
            op, args = message["op"], message["args"]
            if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
                raise ValueError(op)
            for arg in args:
                if not isinstance(arg, dict):
                    raise ValueError(arg)
        except (ValueError, KeyError, TypeError):
            return self._error(session, "60012", f"Invalid request: {str(raw)[:100]}")
        for arg in args:
            symbol = arg.get("instId")
            if arg.get("channel") != "books":
                self._error(session, "60018", f"Wrong URL or channel:{arg.get('channel')}")
            elif symbol not in self.books:
                self._error(session, "60018", f"Wrong URL or channel:books,instId:{symbol}")
            elif op == "subscribe":
                session.subs[symbol] = 0
                session.subscribed = True
                session.send(_json({"event": "subscribe", "arg": arg}))
                session.send(self._snapshot(self.books[symbol]))
            else:
                session.subs.pop(symbol, None)
                session.send(_json({"event": "unsubscribe", "arg": arg}))

    @staticmethod
    def _error(session: Session, code: str, msg: str) -> None:
        session.send(_json({"event": "error", "code": code, "msg": msg}))
