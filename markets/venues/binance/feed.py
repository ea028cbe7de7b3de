"""Binance spot feed: `<symbol>@depth@100ms` diffs on a combined stream, synced to REST depth."""

from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from markets.venues.feed import NO_CHANGE, SnapshotFeed


class BinanceFeed(SnapshotFeed):
    """One combined-stream connection; each book follows the documented U/u sync procedure."""

    idle_timeout = 30.0

    def __init__(
        self,
        venue: str,
        url: str,
        symbols: dict[str, str],
        rest_url: str,
        snapshot_limit: int = 1000,
    ) -> None:
        super().__init__(venue, url, symbols)
        streams = "/".join(f"{s.lower()}@depth@100ms" for s in self.markets)
        self.url = f"{url.rstrip('/')}/stream?streams={streams}"
        self.rest_url = rest_url.rstrip("/")
        self.snapshot_limit = snapshot_limit
        if self.core.BinanceWire is not None:
            # The compiled core takes the usual frames from their text; it hands every other
            # frame, untouched, to this class's `handle`.
            self.handle = self.core.BinanceWire(self, self.handle).handle

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        streams = parse_qs(urlsplit(url).query).get("streams", [""])[0]
        return [name.split("@")[0].upper() for name in streams.split("/") if name], {}

    def subscribe_messages(self) -> list[str]:
        return []  # the stream names are in the URL

    @property
    def subscribed(self) -> bool:
        return True

    def snapshot_url(self, market: str) -> str:
        """Return the REST depth URL for `market`."""
        query = urlencode({"symbol": self.symbols[market], "limit": self.snapshot_limit})
        return f"{self.rest_url}/api/v3/depth?{query}"

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        self.stats.frames += 1
        try:
            msg = orjson.loads(text)
            data = msg.get("data")
            if data is None:
                return self._handle_control(msg, text)
            if data.get("e") != "depthUpdate":
                self.stats.ignored += 1  # bookTicker, trades... on the same socket
                return NO_CHANGE
            market = self.markets[data["s"]]
            first, last = data["U"], data["u"]
            if type(first) is not int or type(last) is not int or first > last:
                raise ValueError("bad update ids")
            parse_side = self.core.parse_pairs
            event = (first, last, parse_side(data["b"]), parse_side(data["a"]))
            exchange_ts = data["E"] / 1000
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            return self.malformed(repr(exc), text)
        book = self.books[market]
        if not book.valid:
            self._buffer(market, event)
            return NO_CHANGE
        if not self._apply(market, event):
            return [market]  # it just became invalid
        self.stamp(book, exchange_ts, received_ts)
        return self._check_crossed(market)

    def snapshot_market(self, url: str) -> str | None:
        symbol = parse_qs(urlsplit(url).query).get("symbol", [""])[0]
        return self.markets.get(symbol)

    def handle_snapshot(self, market: str, body: str, received_ts: float) -> list[str]:
        """Sync `market` to a REST depth snapshot body, then replay the buffered diffs."""
        self.requested.discard(market)
        try:
            snap = orjson.loads(body)
            last_id = snap["lastUpdateId"]
            bids, asks = self.core.parse_pairs(snap["bids"]), self.core.parse_pairs(snap["asks"])
            if type(last_id) is not int:
                raise ValueError("bad lastUpdateId")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.malformed(f"snapshot {exc!r}", body)
            self._request_snapshot(market)
            return []
        buffer = self.buffers[market]
        if buffer and last_id < buffer[0][0]:
            self._request_snapshot(market)  # older than the stream: fetch again
            return []
        book = self.books[market]
        book.load(bids, asks, last_id)
        self.stamp(book, None, received_ts)
        events, self.buffers[market] = buffer, []
        for i, event in enumerate(events):
            if not self._apply(market, event):
                self.buffers[market] = events[i:]  # keep what follows the gap for the next try
                return [market]
        return self._check_crossed(market)

    def _apply(self, market: str, event: tuple[int, int, list, list]) -> bool:
        """Apply one diff if it continues the book; on a gap invalidate and resync."""
        first, last, bids, asks = event
        book = self.books[market]
        if last <= book.sequence:
            return True  # already in the snapshot
        # `U <= lastUpdateId + 1 <= u + 1`: the only stale case (u < id + 1) was dropped above.
        if first > book.sequence + 1:
            self.stats.gaps += 1
            book.invalidate(f"gap {book.sequence} -> {first}")
            self.buffers[market] = [event]
            self._request_snapshot(market)
            return False
        book.apply(bids, asks)
        book.sequence = last
        self.stats.book_updates += 1
        return True

    def _handle_control(self, msg: dict, text: str) -> tuple[str, ...]:
        if "result" in msg and "id" in msg:
            return NO_CHANGE  # answer to a SUBSCRIBE/UNSUBSCRIBE request
        if "code" in msg or msg.get("e") == "serverShutdown":
            return self.venue_error(text)
        return self.malformed("not a combined-stream frame", text)
