"""KuCoin spot as the simulated venue serves it: bullet-public tokens that expire, the WebSocket
(welcome, JSON ping/pong, `/market/level2` changes each with its own sequence) and the REST
order book snapshot at the sequence it shows."""

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable
from http import HTTPStatus
from urllib.parse import parse_qs

from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import Timing
from markets.simulator.venue import RestAnswer, RestRequest, Session, SimVenue

ENDPOINT = "/kucoin/endpoint"
TOPIC = "/market/level2:"
BOOK_DEPTHS = {"level2_20": 20, "level2_100": 100}
OK = "200000"


def _json(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class SimKucoin(SimVenue):
    """KuCoin on `/kucoin/endpoint?token=..&connectId=..`, its REST API under `/kucoin`."""

    name = "kucoin"
    malformed = '{"type":"message","topic":"/market/level2:'

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.sequences = {s: b.rng.randint(10**12, 10**13) for s, b in self.books.items()}
        self.tokens: dict[str, float] = {}  # token -> loop time it expires
        self.token_sessions: dict[Session, str] = {}

    # -- market data -----------------------------------------------------------------------

    def streams(self, path: str) -> bool:
        return path == ENDPOINT

    def clocks(self) -> list[Awaitable[None]]:
        return [*super().clocks(), self._expire_forever()]

    def bullet(self, host: str) -> dict:
        """POST /api/v1/bullet-public: a new token and the instance server to use it on."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = asyncio.get_running_loop().time() + self.timing.kucoin_token_ttl
        server = {
            "endpoint": f"ws://{host}{ENDPOINT}",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": int(self.timing.kucoin_ping_interval * 1000),
            "pingTimeout": int(self.timing.kucoin_ping_timeout * 1000),
        }
        return {"code": OK, "data": {"token": token, "instanceServers": [server]}}

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        token = query.get("token", [""])[0]
        connect_id = query.get("connectId", [""])[0]
        if self._expired(token):
            session.send(
                _json({"id": connect_id, "type": "error", "code": 401, "data": "token is invalid"})
            )
            await asyncio.sleep(0.05)  # let the writer send it
            return await session.ws.close(1000, "token is invalid")
        self.token_sessions[session] = token
        session.send(_json({"id": connect_id, "type": "welcome"}))
        silence = self.timing.kucoin_ping_interval + self.timing.kucoin_ping_timeout
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(session.ws.recv(), silence)
                except TimeoutError:
                    return await session.ws.close(1000, "ping timeout")
                self._receive(session, raw)
        finally:
            self.token_sessions.pop(session, None)

    def _expired(self, token: str) -> bool:
        expires = self.tokens.get(token)
        return expires is None or asyncio.get_running_loop().time() >= expires

    async def _expire_forever(self) -> None:
        """Close the sockets whose token expired, as KuCoin does: the client needs a new one."""
        while True:
            await asyncio.sleep(min(1.0, self.timing.kucoin_token_ttl / 4))
            for session, token in list(self.token_sessions.items()):
                if self._expired(token):
                    session.send(_json({"type": "error", "code": 401, "data": "token is expired"}))
                    self.token_sessions.pop(session, None)
                    asyncio.get_running_loop().call_later(0.05, session.ws.transport.close)

    def _receive(self, session: Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind, request_id = message["type"], str(message.get("id", ""))
        except (ValueError, KeyError, TypeError):
            return session.send(_json({"type": "error", "code": 400, "data": "bad request"}))
        if kind == "ping":
            return session.send(_json({"id": request_id, "type": "pong"}))
        topic = message.get("topic", "")
        if kind not in ("subscribe", "unsubscribe") or not topic.startswith(TOPIC):
            error = {
                "id": request_id,
                "type": "error",
                "code": 404,
                "data": f"topic {topic} is not found",
            }
            return session.send(_json(error))
        symbols = topic.removeprefix(TOPIC).split(",")
        unknown = [s for s in symbols if s not in self.books]
        if unknown:
            error = {
                "id": request_id,
                "type": "error",
                "code": 404,
                "data": f"symbol {unknown[0]} not exists",
            }
            return session.send(_json(error))
        for symbol in symbols:
            if kind == "subscribe":
                session.subs[symbol] = 0
            else:
                session.subs.pop(symbol, None)
        session.subscribed = bool(session.subs)
        if message.get("response"):
            session.send(_json({"id": request_id, "type": "ack"}))

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        symbol, listing = book.symbol, book.listing
        first = self.sequences[symbol] + 1
        sides: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        for seq, (side, price, lots) in enumerate(changes, first):
            # A removed level is size "0" at its price, as KuCoin sends it.
            size = "0" if lots == 0 else listing.qty_text(lots)
            sides["bids" if side == "bid" else "asks"].append(
                [listing.price_text(price), size, str(seq)]
            )
        self.sequences[symbol] = last = first + len(changes) - 1
        data = {
            "changes": sides,
            "sequenceEnd": last,
            "sequenceStart": first,
            "symbol": symbol,
            "time": time.time_ns() // 1_000_000,
        }
        frame = _json(
            {"type": "message", "topic": TOPIC + symbol, "subject": "trade.l2update", "data": data}
        )
        for session in self.sessions:
            if symbol in session.subs and not session.take("gap", symbol):
                session.send(frame)

    def order_book(self, query: dict[str, list[str]], depth: int) -> tuple[int, dict]:
        """GET /api/v1/market/orderbook/level2_20|_100: the best levels at `sequence`."""
        book = self.books.get(query.get("symbol", [""])[0])
        if book is None:
            return HTTPStatus.OK, {"code": "400100", "msg": "symbol not exists"}

        def levels(side: str) -> list[list[str]]:
            sizes = book.book.side(side)
            return [
                [book.listing.price_text(p), book.listing.qty_text(sizes[p])]
                for p in best_first(sizes, side, depth)
            ]

        data = {
            "time": time.time_ns() // 1_000_000,
            "sequence": str(self.sequences[book.symbol]),
            "bids": levels("bid"),
            "asks": levels("ask"),
        }
        return HTTPStatus.OK, {"code": OK, "data": data}

    # -- REST ------------------------------------------------------------------------------

    def answer(self, request: RestRequest) -> RestAnswer | None:
        route = f"{request.method} {request.path}"
        if route == "POST /api/v1/bullet-public":
            return RestAnswer(HTTPStatus.OK, self.bullet(request.headers.get("Host", "")))
        name = request.path.removeprefix("/api/v1/market/orderbook/")
        if request.method == "GET" and name in BOOK_DEPTHS:
            return RestAnswer(*self.order_book(parse_qs(request.query), BOOK_DEPTHS[name]))
        return None
