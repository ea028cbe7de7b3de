"""Coinbase Advanced Trade feed: `level2` + `heartbeats` frames into books; sequence_num gaps."""

import json

import orjson

from markets.venues.events import Send
from markets.venues.feed import NO_CHANGE, Feed, exchange_time


class CoinbaseFeed(Feed):
    """One Advanced Trade market-data connection; `sequence_num` is one counter per connection."""

    idle_timeout = 5.0  # heartbeats arrive every second
    freeze_after = 2.5
    max_size = 10 * 2**20  # level2 snapshots run to several MB

    def __init__(self, venue: str, url: str, symbols: dict[str, str]) -> None:
        super().__init__(venue, url, symbols)
        self.last_seq: int | None = None
        self._subscribed = False
        if self.core.CoinbaseWire is not None:
            # The compiled core takes the usual frames from their text; it hands every other
            # frame, untouched, to this class's `handle`.
            self.handle = self.core.CoinbaseWire(self, self.handle).handle

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        symbols: list[str] = []
        for text in sent:
            msg = orjson.loads(text)
            if msg.get("type") == "subscribe" and msg.get("channel") == "level2":
                symbols += [p for p in msg.get("product_ids", []) if p not in symbols]
        return symbols, {}

    def subscribe_messages(self) -> list[str]:
        products = list(self.markets)
        return [
            self._subscription("subscribe", "level2", products),
            self._subscription("subscribe", "heartbeats", []),
        ]

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    def reset(self, reason: str) -> None:
        super().reset(reason)
        self.last_seq = None
        self._subscribed = False

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        self.stats.frames += 1
        try:
            msg = orjson.loads(text)
            channel = msg.get("channel")
            seq = msg.get("sequence_num")
        except (orjson.JSONDecodeError, AttributeError):
            return self.malformed("not a JSON object", text)
        if channel is None:
            if msg.get("type") == "error":
                return self.venue_error(text)
            return self.malformed("no channel", text)
        if type(seq) is not int or seq < 0:
            return self.malformed("bad sequence_num", text)
        if not self._in_sequence(seq):
            return NO_CHANGE
        if channel == "l2_data":
            return self._handle_l2(msg, text, received_ts)
        if channel == "subscriptions":
            self._subscribed = True
        elif channel != "heartbeats":
            self.stats.ignored += 1
        return NO_CHANGE

    def _in_sequence(self, seq: int) -> bool:
        """Track the per-connection counter; on a gap resubscribe every product."""
        last = self.last_seq
        if last is not None and seq <= last:
            self.stats.ignored += 1  # a late duplicate: the docs say to ignore it
            return False
        self.last_seq = seq
        if last is not None and seq != last + 1:
            self.stats.gaps += 1
            self._resync(list(self.symbols), f"sequence gap {last} -> {seq}")
        return True

    def _handle_l2(self, msg: dict, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        parse_updates = self.core.parse_coinbase
        try:
            exchange_ts = exchange_time(msg.get("timestamp"))
            parsed = []
            for event in msg["events"]:
                market = self.markets[event["product_id"]]
                kind = event["type"]
                if kind not in ("snapshot", "update"):
                    raise ValueError(f"unknown event type {kind!r}")
                parsed.append((market, kind, *parse_updates(event["updates"])))
        except (KeyError, TypeError, ValueError) as exc:
            # Its sequence_num is taken, so the next frame shows no gap, and Coinbase has no
            # checksum to catch what the lost frame changed: resync as on a gap.
            self._resync(list(self.symbols), "malformed frame")
            return self.malformed(repr(exc), text)
        changed = []
        for market, kind, bids, asks in parsed:
            book = self.books[market]
            if kind == "snapshot":
                book.load(bids, asks, msg["sequence_num"])
            elif book.valid:
                book.apply(bids, asks)
                book.sequence = msg["sequence_num"]
            else:
                continue  # updates before the fresh snapshot belong to the dropped book
            self.stats.book_updates += 1
            self.stamp(book, exchange_ts, received_ts)
            if market not in changed:
                changed.append(market)
        return self._drop_crossed(changed)

    def _drop_crossed(self, changed: list[str]) -> list[str]:
        """A book crossed after a whole message is wrong: invalidate and resubscribe it."""
        crossed = [market for market in changed if self.books[market].crossed]
        if crossed:
            self._resync(crossed, "crossed")
        return changed

    def _resync(self, markets: list[str], reason: str) -> None:
        products = [self.symbols[market] for market in markets]
        for market in markets:
            self.books[market].invalidate(reason)
        self.stats.resyncs += 1
        # Unsubscribe first: a repeated subscribe on a live channel sends no new snapshot.
        self.actions.append(Send(self._subscription("unsubscribe", "level2", products)))
        self.actions.append(Send(self._subscription("subscribe", "level2", products)))

    @staticmethod
    def _subscription(kind: str, channel: str, products: list[str]) -> str:
        return json.dumps({"type": kind, "product_ids": products, "channel": channel})
