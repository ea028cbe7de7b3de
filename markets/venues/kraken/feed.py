"""Kraken Spot WebSocket v2 feed: `book` channel frames into books, verified by their CRC32."""

import json
from itertools import count

import msgspec

from markets.venues.events import Send
from markets.venues.feed import NO_CHANGE, Feed, exchange_time

# Kraken's own SDK subscribes 25 on the wire when 10 is asked: the CRC covers the top 10 and a
# depth-10 book has no headroom when a visible level is deleted.
WIRE_DEPTH = {10: 25}


# Every JSON number with a fraction or exponent comes back as its own text (`float_hook`): trailing
# zeros are part of the checksum, and a float would lose digits of a 16-digit quantity. An integer
# comes back as an int, whose `str` is its text (JSON has no leading zeros). 3x `json`'s speed here.
decode = msgspec.json.Decoder(float_hook=str).decode


class KrakenFeed(Feed):
    """One Kraken v2 connection carrying the `book` channel for many symbols."""

    idle_timeout = 10.0  # heartbeats every second when no book data flows
    ping_interval = 5.0

    def __init__(
        self,
        venue: str,
        url: str,
        symbols: dict[str, str],
        depth: int = 10,
        wire_depth: int | None = None,
    ) -> None:
        # `wire_depth`, when given, is what a recording subscribed: kept as it was on the wire.
        self.wire_depth = wire_depth or WIRE_DEPTH.get(depth, depth)
        super().__init__(venue, url, symbols, self.wire_depth)
        self.acked: set[str] = set()
        self._req_ids = count(1)
        if self.core.KrakenWire is not None:
            # The compiled core takes the usual frames from their text; it hands every other
            # frame, untouched, to this class's `handle`.
            self.handle = self.core.KrakenWire(self, self.handle).handle

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        symbols: list[str] = []
        depth = WIRE_DEPTH[10]  # what this feed subscribes when none was recorded
        for text in sent:
            msg = json.loads(text)
            params = msg.get("params", {})
            if msg.get("method") == "subscribe" and params.get("channel") == "book":
                symbols += [s for s in params.get("symbol", []) if s not in symbols]
                depth = params.get("depth", depth)
        # The depth that was on the wire, not one to widen again (a depth-10 recording's books
        # are cut at 10, as the venue cut them, or their checksums fail).
        return symbols, {"wire_depth": depth}

    def subscribe_messages(self) -> list[str]:
        return [self._book_request("subscribe", list(self.markets))]

    @property
    def subscribed(self) -> bool:
        return len(self.acked) == len(self.markets)

    def ping_message(self) -> str:
        return json.dumps({"method": "ping", "req_id": next(self._req_ids)})

    def reset(self, reason: str) -> None:
        super().reset(reason)
        self.acked.clear()

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        self.stats.frames += 1
        try:
            msg = decode(text)
            channel = msg.get("channel")
        except (ValueError, AttributeError):
            return self.malformed("not a JSON object", text)
        if channel == "book":
            return self._handle_book(msg, text, received_ts)
        if channel in ("heartbeat", "status"):
            return NO_CHANGE
        method = msg.get("method")
        if method is None:
            return self.malformed("neither channel nor method", text)
        if msg.get("success") is False or method == "error":
            return self.venue_error(text)
        if method == "subscribe":
            self.acked.add(msg.get("result", {}).get("symbol"))
        elif method not in ("unsubscribe", "pong"):
            self.stats.ignored += 1
        return NO_CHANGE

    def _handle_book(self, msg: dict, text: str, received_ts: float) -> list[str] | tuple:
        parse_side = self.core.parse_kraken
        try:
            kind = msg["type"]
            if kind not in ("snapshot", "update"):
                raise ValueError(f"unknown type {kind!r}")
            parsed = [
                (
                    self.markets[item["symbol"]],
                    parse_side(item.get("bids", ())),
                    parse_side(item.get("asks", ())),
                    int(item["checksum"]),
                    exchange_time(item.get("timestamp")),
                )
                for item in msg["data"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # The checksum covers only the top 10: a lost change deeper down would go unseen.
            for market in self._named_markets(msg):
                self._resync(market, "malformed frame")
            return self.malformed(repr(exc), text)
        changed = []
        for market, bids, asks, checksum, exchange_ts in parsed:
            book = self.books[market]
            if kind == "snapshot":
                book.load(bids, asks)
                book.truncate(self.wire_depth)
            elif book.valid:
                book.apply(bids, asks)
            else:
                continue  # waiting for the snapshot of a resubscription
            self.stats.book_updates += 1
            self.stamp(book, exchange_ts, received_ts)
            # A book that just became invalid is reported too, so the detector drops it.
            changed.append(market)
            if book.checksum() != checksum:
                self.stats.checksum_failed += 1
                self._resync(market, "checksum mismatch")
                continue
            self.stats.checksum_ok += 1
            if book.crossed:
                self._resync(market, "crossed")
        return changed

    def _named_markets(self, msg: dict) -> list[str]:
        """The markets a book frame names; every market when its symbols cannot be read."""
        try:
            symbols = [item["symbol"] for item in msg["data"]]
            return [self.markets[symbol] for symbol in symbols if symbol in self.markets]
        except (KeyError, TypeError):
            return list(self.symbols)

    def _resync(self, market: str, reason: str) -> None:
        """Invalidate one book and ask for a fresh snapshot: unsubscribe, then subscribe again."""
        self.books[market].invalidate(reason)
        self.stats.resyncs += 1
        symbol = [self.symbols[market]]
        self.actions.append(Send(self._book_request("unsubscribe", symbol)))
        self.actions.append(Send(self._book_request("subscribe", symbol)))

    def _book_request(self, method: str, symbols: list[str]) -> str:
        params: dict = {"channel": "book", "symbol": symbols, "depth": self.wire_depth}
        if method == "subscribe":
            params["snapshot"] = True
        return json.dumps({"method": method, "params": params, "req_id": next(self._req_ids)})
