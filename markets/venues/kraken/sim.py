"""Kraken Spot WebSocket v2 market data as the simulated venue serves it: the `book` channel with
CRC32 checksums over each client's subscribed window."""

import asyncio
import json
import random
import zlib

from markets.book import checksum_fragment
from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.venue import Session, SimVenue, rfc3339

DEPTHS = (10, 25, 100, 500, 1000)


def kraken_checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken v2 CRC32 over the top 10 asks then top 10 bids, each (price, qty) text best-first."""
    parts = [checksum_fragment(p, q) for p, q in [*asks[:10], *bids[:10]]]
    return zlib.crc32("".join(parts).encode())


class SimKraken(SimVenue):
    """Kraken on `/kraken/v2`: acks per symbol, snapshots at the asked depth, checked updates."""

    name = "kraken"
    malformed = '{"channel":"book","type":"update","data":[{"symbol":'
    one_shots = ("gap", "bad_checksum")

    def streams(self, path: str) -> bool:
        return path == "/kraken/v2"

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        status = {"api_version": "v2", "connection_id": random.getrandbits(64), "system": "online"}
        session.send(json.dumps({"channel": "status", "type": "update", "data": [status]}))
        heartbeats = asyncio.create_task(self._heartbeats(session))
        try:
            async for raw in session.ws:
                self._receive(session, raw)
        finally:
            heartbeats.cancel()

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        frames: dict[int, str | None] = {}
        checksum = self._checksum(book)
        stamp = rfc3339(6)
        for session in self.sessions:
            depth = session.subs.get(book.symbol)
            if depth is None:
                continue
            if depth not in frames:
                frames[depth] = self._update(book, depth, checksum, stamp)
            if frames[depth] is None or session.take("gap", book.symbol):
                continue
            if session.take("bad_checksum", book.symbol):
                session.send(self._update(book, depth, checksum ^ 0xFFFFFFFF, stamp) or "")
            else:
                session.send(frames[depth])

    def _update(self, book: VenueBook, depth: int, checksum: int, stamp: str) -> str | None:
        """The update that takes a client's window of `depth` levels from before to now."""
        sides = {}
        for index, side in enumerate(("bid", "ask")):
            old, new = book.book.previous[index], book.book.side(side)
            old_top, new_top = best_first(old, side, depth), best_first(new, side, depth)
            # Levels pushed out of the window are not deleted on the wire: clients truncate.
            deleted = [(p, 0) for p in old_top if p not in new]
            shown = set(old_top)
            entered = [(p, new[p]) for p in new_top if p not in shown or old.get(p) != new[p]]
            sides[side] = deleted + entered
        if not sides["bid"] and not sides["ask"]:
            return None
        return self._frame("update", book, sides["bid"], sides["ask"], checksum, stamp)

    def _frame(self, kind, book, bids, asks, checksum: int, stamp: str | None = None) -> str:
        def levels(side: list[tuple[int, int]]) -> str:
            listing = book.listing
            return ",".join(
                f'{{"price":{listing.price_text(p)},"qty":{listing.qty_text(q)}}}' for p, q in side
            )

        tail = f',"timestamp":"{stamp}"' if stamp else ""
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{json.dumps(book.symbol)},'
            f'"bids":[{levels(bids)}],"asks":[{levels(asks)}],"checksum":{checksum}{tail}}}]}}'
        )

    @staticmethod
    def _checksum(book: VenueBook) -> int:
        def texts(side: str) -> list[tuple[str, str]]:
            levels = book.book.side(side)
            listing = book.listing
            top = best_first(levels, side, 10)
            return [(listing.price_text(p), listing.qty_text(levels[p])) for p in top]

        return kraken_checksum(texts("ask"), texts("bid"))

    def _snapshot(self, book: VenueBook, depth: int) -> str:
        def top(side: str) -> list[tuple[int, int]]:
            levels = book.book.side(side)
            return [(p, levels[p]) for p in best_first(levels, side, depth)]

        return self._frame("snapshot", book, top("bid"), top("ask"), self._checksum(book))

    def _receive(self, session: Session, raw: str | bytes) -> None:
        time_in = rfc3339(6)
        try:
            message = json.loads(raw)
            method = message["method"]
        except (ValueError, KeyError, TypeError):
            return self._reply(session, {"error": "Malformed request", "method": "error"}, time_in)
        req_id = {"req_id": message["req_id"]} if "req_id" in message else {}
        if method == "ping":
            return self._reply(session, {"method": "pong", **req_id}, time_in)
        params = message.get("params")
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
            return self._reply(session, {"error": "Malformed request", "method": "error"}, time_in)
        for symbol in params.get("symbol") or []:
            result = self._subscription(session, method, params, symbol)
            self._reply(session, {"method": method, **result, **req_id}, time_in)
            if method == "subscribe" and result["success"] and params.get("snapshot", True):
                session.send(self._snapshot(self.books[symbol], session.subs[symbol]))

    def _subscription(self, session: Session, method: str, params: dict, symbol: str) -> dict:
        """Apply one symbol's (un)subscribe; return its ack fields."""
        depth = params.get("depth", 10)
        failure = None
        if params.get("channel") != "book":
            failure = f"Channel not supported {params.get('channel')}"
        elif depth not in DEPTHS:
            failure = f"Invalid depth {depth}"
        elif symbol not in self.books:
            failure = f"Currency pair not supported {symbol}"
        elif method == "subscribe" and symbol in session.subs:
            failure = "Already subscribed"
        elif method == "unsubscribe" and session.subs.get(symbol) != depth:
            failure = "Subscription Not Found"
        if failure:
            return {"error": failure, "success": False, "symbol": symbol}
        if method == "subscribe":
            session.subs[symbol] = depth
            session.subscribed = True
        else:
            del session.subs[symbol]
        result = {"channel": "book", "depth": depth, "symbol": symbol}
        if method == "subscribe":
            result["snapshot"] = params.get("snapshot", True)
        return {"result": result, "success": True}

    @staticmethod
    def _reply(session: Session, fields: dict, time_in: str) -> None:
        if "error" in fields:
            fields["success"] = False
        session.send(json.dumps({**fields, "time_in": time_in, "time_out": rfc3339(6)}))

    async def _heartbeats(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            # Kraken sends heartbeats after the first subscription, and only when idle.
            idle = loop.time() - session.last_sent >= self.timing.heartbeat * 0.9
            if session.subscribed and idle:
                session.send('{"channel":"heartbeat"}')
