"""The simulated venues on one loopback port: builds the markets and venues, routes each request
to its venue (WebSocket or REST), and takes faults on its control endpoint."""

import asyncio
import ipaddress
import json
import logging
import random
import re
from collections.abc import Mapping
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from markets.simulator.faults import FAULTS
from markets.simulator.market import SimMarket, VenueBook
from markets.simulator.specs import (
    DEFAULT_MARKETS,
    DEFAULT_PROFILES,
    MarketSpec,
    Timing,
    VenueProfile,
)
from markets.simulator.venue import RestRequest, Session, SimVenue
from markets.venues.binance.sim import SimBinance
from markets.venues.coinbase.sim import SimCoinbase
from markets.venues.kraken.sim import SimKraken
from markets.venues.kucoin.sim import SimKucoin
from markets.venues.okx.sim import SimOkx

logger = logging.getLogger(__name__)

# Adding a simulated venue is its markets/venues/<venue>/sim.py and one row here.
VENUE_TYPES: dict[str, type[SimVenue]] = {
    "coinbase": SimCoinbase,
    "kraken": SimKraken,
    "binance": SimBinance,
    "okx": SimOkx,
    "kucoin": SimKucoin,
}
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[^\r]*", re.IGNORECASE)


class BodyConnection(ServerConnection):
    """A connection that also takes a REST request with a body (an order POST). websockets
    refuses request bodies, so the body is held back here and the request passed on without it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.body = b""
        self._head: bytearray | None = bytearray()

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            return super().data_received(data)
        self._head += data
        end = self._head.find(b"\r\n\r\n") + 4
        if end < 4:
            return
        length = CONTENT_LENGTH.search(self._head, 0, end)
        size = int(length[1]) if length else 0
        if len(self._head) < end + size:
            return
        head, rest = bytes(self._head[:end]), bytes(self._head[end + size :])
        self.body, self._head = bytes(self._head[end : end + size]), None
        super().data_received(CONTENT_LENGTH.sub(b"", head) + rest)


class VenueSimulator:
    """Serves the simulated venues on one port; start with `async with` or `start()`/`stop()`.

    Paths: /coinbase, /kraken/v2, /okx/ws/v5/public, /kucoin/endpoint, /binance/stream?streams=..,
    /binance/ws/<stream>, each venue's REST API under /<venue>, and POST /control/<venue>/<fault>
    from loopback only.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        markets: Mapping[str, MarketSpec] | None = None,
        profiles: Mapping[str, VenueProfile] | None = None,
        timing: Timing | None = None,
        seed: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.markets = dict(DEFAULT_MARKETS if markets is None else markets)
        self.profiles = {**DEFAULT_PROFILES, **(profiles or {})}
        self.timing = timing or Timing()
        self.seed = seed
        self.venues: dict[str, SimVenue] = {}
        self._server: Server | None = None
        self._clocks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Build the markets, start their clocks and listen; `port` is then the bound port."""
        start = asyncio.get_running_loop().time()
        markets = {
            symbol: SimMarket(spec, random.Random(f"{self.seed}:{symbol}"), self.timing, start)
            for symbol, spec in self.markets.items()
        }
        for venue, venue_type in VENUE_TYPES.items():
            books = [
                VenueBook(venue, market, self.profiles[venue], f"{self.seed}:{venue}:{symbol}")
                for symbol, market in markets.items()
                if venue in market.spec.listings
            ]
            for book in books:
                book.step(start)  # every book has its first levels before anyone can ask
            if books:
                self.venues[venue] = venue_type(books, self.timing)
        self._clocks = [
            asyncio.create_task(clock) for v in self.venues.values() for clock in v.clocks()
        ]
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            create_connection=BodyConnection,
            ping_interval=None,  # only Binance pings, on its own schedule
            logger=logger,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for clock in self._clocks:
            clock.cancel()
        await asyncio.gather(*self._clocks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> "VenueSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def urls(self) -> dict[str, str]:
        """Where each venue lives: its market data, and its REST API (orders) by `<slug>_rest`."""
        ws, http = f"ws://{self.host}:{self.port}", f"http://{self.host}:{self.port}"
        return {
            "coinbase": f"{ws}/coinbase",
            "kraken": f"{ws}/kraken/v2",
            "binance": f"{ws}/binance",
            "okx": f"{ws}/okx/ws/v5/public",
            "kucoin": f"{ws}/kucoin/endpoint",
            "kucoin_rest": f"{http}/kucoin",
            "binance_rest": f"{http}/binance",
            "coinbase_rest": f"{http}/coinbase",
            "kraken_rest": f"{http}/kraken",
            "control": f"{http}/control",
        }

    def inject(
        self,
        venue: str,
        fault: str,
        *,
        symbol: str | None = None,
        seconds: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Inject a fault; `symbol` (canonical or venue) narrows gap and bad_checksum."""
        if venue not in self.venues or fault not in FAULTS:
            raise ValueError(f"unknown venue or fault: {venue}/{fault}")
        target = self.venues[venue]
        target.inject(fault, target.symbol(symbol, self.markets), seconds, delay)

    def best(self, venue: str, market: str) -> tuple[Decimal, Decimal]:
        """The venue's current best bid and ask for a canonical market."""
        listing = self.markets[market].listings[venue]
        return self.venues[venue].books[listing.symbol].best()

    async def _process_request(self, conn: BodyConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path = url.path.rstrip("/")
        if path.startswith("/control/"):
            return self._control(conn, request, path, parse_qs(url.query))
        name = path.split("/")[1] if path.count("/") else ""
        venue = self.venues.get(name)
        if venue is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such venue\n")
        if venue.refusing():
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refusing connections\n")
        if venue.streams(path):
            return None
        below = path.removeprefix(f"/{name}")
        rest = RestRequest(request.method, below, url.query, request.headers, conn.body.decode())
        answer = venue.answer(rest)
        if answer is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such path\n")
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return _json_response(conn, answer.status, answer.body)

    def _control(self, conn: ServerConnection, request: Request, path: str, query) -> Response:
        if not ipaddress.ip_address(conn.remote_address[0]).is_loopback:
            return conn.respond(HTTPStatus.FORBIDDEN, "loopback only\n")
        if request.method != "POST":
            return conn.respond(HTTPStatus.METHOD_NOT_ALLOWED, "POST only\n")
        parts = path.split("/")
        if len(parts) != 4:
            return conn.respond(HTTPStatus.NOT_FOUND, "use /control/<venue>/<fault>\n")
        try:
            seconds = float(query["seconds"][0]) if "seconds" in query else None
            delay = float(query["delay"][0]) if "delay" in query else None
            symbol = query.get("symbol", [None])[0]
            self.inject(parts[2], parts[3], symbol=symbol, seconds=seconds, delay=delay)
        except ValueError as exc:
            return _json_response(conn, HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc)})
        applied = {"ok": True, "venue": parts[2], "fault": parts[3]}
        return _json_response(conn, HTTPStatus.OK, applied)

    async def _handle(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path)
        path = url.path.rstrip("/")
        venue = self.venues[path.split("/")[1]]
        session = Session(ws, venue.faults)
        venue.sessions.add(session)
        writer = asyncio.create_task(session.write())
        try:
            await venue.converse(session, path, parse_qs(url.query))
        except ConnectionClosed:
            pass
        finally:
            venue.sessions.discard(session)
            writer.cancel()


def _json_response(conn: ServerConnection, status: int, body: object) -> Response:
    response = conn.respond(status, json.dumps(body, separators=(",", ":")))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
