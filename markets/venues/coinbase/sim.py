"""Coinbase Advanced Trade market data as the simulated venue serves it: the `level2` and
`heartbeats` channels, one sequence number per connection."""

import asyncio
import json
import time

from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import SimListing
from markets.simulator.venue import Session, SimVenue, rfc3339


def _trimmed(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


class SimCoinbase(SimVenue):
    """Coinbase on `/coinbase`: subscribe within the timeout, a snapshot first, then updates."""

    name = "coinbase"
    malformed = '{"channel":"l2_data","timestamp":"'

    def streams(self, path: str) -> bool:
        return path == "/coinbase"

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        tasks = [
            asyncio.create_task(self._close_unless_subscribed(session)),
            asyncio.create_task(self._heartbeats(session)),
        ]
        try:
            async for raw in session.ws:
                self._receive(session, raw)
        finally:
            for task in tasks:
                task.cancel()

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        stamp = rfc3339(9)
        updates = [self._level(book.listing, side, p, q, stamp) for side, p, q in changes]
        events = [{"type": "update", "product_id": book.symbol, "updates": updates}]
        for session in self.sessions:
            if book.symbol in session.subs:
                lost = session.take("gap", book.symbol)
                self._send(session, "l2_data", events, lost=lost)

    def _send(self, session: Session, channel: str, events: list, lost: bool = False) -> None:
        seq, session.seq = session.seq, session.seq + 1
        if lost:  # the number is used up, the message never arrives: a real gap
            return
        envelope = {"channel": channel, "timestamp": rfc3339(9), "sequence_num": seq}
        session.send(json.dumps({**envelope, "events": events}, separators=(",", ":")))

    @staticmethod
    def _level(listing: SimListing, side: str, price: int, lots: int, stamp: str) -> dict:
        return {
            "side": "bid" if side == "bid" else "offer",
            "event_time": stamp,
            "price_level": listing.price_text(price),
            "new_quantity": _trimmed(listing.qty_text(lots)),
        }

    def _receive(self, session: Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind, channel = message["type"], message["channel"]
            products = message.get("product_ids") or []
        except (ValueError, KeyError, TypeError):
            return self._error(session, "malformed subscription message")
        if kind not in ("subscribe", "unsubscribe") or channel not in ("level2", "heartbeats"):
            return self._error(session, f"unsupported {kind!r} on channel {channel!r}")
        unknown = [p for p in products if p not in self.books]
        if unknown:
            self._error(session, f"unknown product ids {unknown}")
        known = [p for p in products if p in self.books]
        session.subscribed = True
        if channel == "heartbeats":
            session.heartbeats = kind == "subscribe"
        elif kind == "subscribe":
            session.subs.update(dict.fromkeys(known, 0))
        else:
            for product in known or list(session.subs):
                session.subs.pop(product, None)
        self._acknowledge(session)
        if channel == "level2" and kind == "subscribe":
            for product in known:
                self._snapshot(session, self.books[product])

    def _acknowledge(self, session: Session) -> None:
        current: dict[str, list[str]] = {}
        if session.subs:
            current["level2"] = list(session.subs)
        if session.heartbeats:
            current["heartbeats"] = ["heartbeats"]
        self._send(session, "subscriptions", [{"subscriptions": current}])

    def _snapshot(self, session: Session, book: VenueBook) -> None:
        # Coinbase stamps snapshot levels with the epoch placeholder, not a real event time.
        epoch = "1970-01-01T00:00:00Z"
        levels = [
            self._level(book.listing, side, p, book.book.side(side)[p], epoch)
            for side in ("bid", "ask")
            for p in best_first(book.book.side(side), side)
        ]
        events = [{"type": "snapshot", "product_id": book.symbol, "updates": levels}]
        self._send(session, "l2_data", events)

    @staticmethod
    def _error(session: Session, message: str) -> None:
        session.send(json.dumps({"type": "error", "message": message}))

    async def _close_unless_subscribed(self, session: Session) -> None:
        await asyncio.sleep(self.timing.subscribe_timeout)
        if not session.subscribed:
            await session.ws.close(1008, "subscribe within 5 seconds")

    async def _heartbeats(self, session: Session) -> None:
        counter = 0
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            if session.heartbeats:
                counter += 1
                event = {"current_time": self._go_time(), "heartbeat_counter": counter}
                self._send(session, "heartbeats", [event])

    @staticmethod
    def _go_time() -> str:
        # Coinbase prints Go's time.Time here, monotonic clock reading included.
        stamp = rfc3339(9).replace("T", " ").removesuffix("Z")
        return f"{stamp} +0000 UTC m=+{time.monotonic():.9f}"
