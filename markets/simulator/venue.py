"""What every simulated venue shares: its books, its clients' sessions, the stepping clock, fault
injection, and the interface its own `markets/venues/<venue>/sim.py` fills in."""

import asyncio
import random
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from markets.simulator.book import Change
from markets.simulator.faults import TIME_BOXED, Faults
from markets.simulator.market import VenueBook
from markets.simulator.specs import MarketSpec, Timing


def rfc3339(places: int) -> str:
    """Now in UTC as RFC 3339 with `places` decimals of the second."""
    seconds, nanos = divmod(time.time_ns(), 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{nanos // 10 ** (9 - places):0{places}d}Z"


@dataclass(frozen=True, slots=True)
class RestRequest:
    """An HTTP request to a venue's REST API, its path taken below the venue's base URL."""

    method: str
    path: str
    query: str  # as sent: a signature covers it byte for byte
    headers: Mapping[str, str]
    body: str


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """What the venue answers, and how late (a fault can make it miss the client's timeout)."""

    status: int
    body: object
    delay: float = 0.0


class Session:
    """One client connection with an ordered outbox, so stalls never block the venue's clock."""

    def __init__(self, ws: ServerConnection, faults: Faults) -> None:
        self.ws = ws
        self.faults = faults
        self.outbox: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.armed: list[tuple[str, str | None]] = []
        self.subs: dict[str, int] = {}  # symbol or stream -> Kraken depth (0 elsewhere)
        self.last_sent = asyncio.get_running_loop().time()
        self.seq = 0
        self.heartbeats = False
        self.subscribed = False
        self.combined = False

    def send(self, text: str) -> None:
        self.last_sent = asyncio.get_running_loop().time()
        self.outbox.put_nowait((self.last_sent, text))

    def arm(self, fault: str, symbol: str | None) -> None:
        self.armed.append((fault, symbol))

    def take(self, fault: str, symbol: str) -> bool:
        """Whether an armed one-shot fault fires for this symbol now (it is then used up)."""
        for armed in self.armed:
            if armed[0] == fault and armed[1] in (None, symbol):
                self.armed.remove(armed)
                return True
        return False

    async def write(self) -> None:
        try:
            while True:
                queued_at, text = await self.outbox.get()
                await self.faults.hold(queued_at)
                await self.ws.send(text)
        except ConnectionClosed:
            return


Levels = list[tuple[Decimal, Decimal]]  # (price, size), best first


@dataclass(slots=True)
class RestFault:
    """A fault armed on a venue's REST API: `kind` on `route`, for the next `times` requests."""

    kind: str
    route: str
    times: int
    message: str = ""
    delay: float = 0.0
    code: int = 0  # the venue's error code, where it numbers them (Binance)


class SimVenue:
    """A simulated venue. Its sim module names it, formats its frames (`publish`), holds its
    conversation with a client (`converse`), says which WebSocket paths are its own (`streams`),
    and may answer REST requests (`answer`)."""

    name = ""
    malformed = "{"  # the broken frame the `malformed` fault sends
    one_shots = ("gap",)  # faults armed on each session, spent on the next frame they hit

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        self.books = {b.symbol: b for b in books}
        self.timing = timing
        self.sessions: set[Session] = set()
        self.faults = Faults()
        self.profile = books[0].profile
        self.rng = random.Random(f"{books[0].rng.random()}:clock")
        self.rest_faults: list[RestFault] = []
        # Seconds the venue's clock runs ahead of ours (behind when negative): its server time
        # and its checks of a request's age read `now()`.
        self.clock_skew = 0.0

    def now(self) -> float:
        """The venue's clock, in seconds since the epoch."""
        return time.time() + self.clock_skew

    def set_book(self, symbol: str, *, bids: Levels, asks: Levels) -> None:
        """Replace the book of `symbol` (levels best first, on its tick and lot): what the venue
        publishes from now on and what orders fill against."""
        book = self.books[symbol]
        tick, lot = book.listing.tick, book.listing.lot

        def units(levels: Levels) -> dict[int, int]:
            return {int(price / tick): int(size / lot) for price, size in levels}

        changes = book.book.replace(units(bids), units(asks))
        if changes:
            self.publish(book, changes)

    def take_rest_fault(self, route: str, kind: str | None = None) -> RestFault | None:
        """The next fault injected (of `kind`, when given), if it is for `route`: faults fire in
        the order injected, so a test can time out an order and then fail the lookups after it."""
        fault = next((f for f in self.rest_faults if kind is None or f.kind == kind), None)
        if fault is None or fault.route != route:
            return None
        fault.times -= 1
        if fault.times <= 0:
            self.rest_faults.remove(fault)
        return fault

    def take_lost(self, route: str) -> RestAnswer | None:
        """The answer to a request on `route` that the `lost` fault drops before the venue acts:
        nothing done, and no answer before the client gives up (a timeout before execution)."""
        fault = self.take_rest_fault(route, "lost")
        return None if fault is None else RestAnswer(HTTPStatus.GATEWAY_TIMEOUT, {}, fault.delay)

    def clocks(self) -> list[Awaitable[None]]:
        """What runs while the venue is up: by default, its books stepping after the market."""
        return [self._step_forever()]

    def streams(self, path: str) -> bool:
        """Whether `path` is one of the venue's WebSocket endpoints."""
        raise NotImplementedError

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        """Send `changes` of `book` to every session subscribed to it."""
        raise NotImplementedError

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        """Serve one client on `path` until it leaves."""
        raise NotImplementedError

    def answer(self, request: RestRequest) -> RestAnswer | None:
        """The answer to a REST request, or None when the venue has no such endpoint."""
        return None

    def open_account(
        self, api_key: str, secret: str, funding: Mapping[str, Decimal], passphrase: str = ""
    ) -> None:
        """Take orders signed with `api_key` and `secret` (as the venue's keys are: an HMAC
        secret, or Coinbase's EC private key in PEM) and `passphrase` where the venue's keys carry
        one (KuCoin), holding `funding` (by the desk's names)."""
        raise NotImplementedError

    def holdings(self, api_key: str) -> dict[str, Decimal]:
        """What `api_key`'s account holds now, by the desk's asset names."""
        raise NotImplementedError

    def hold_order(
        self, api_key: str, symbol: str, *, side: str, price: Decimal, amount: Decimal, cid: str
    ) -> str:
        """Rest a limit order for `api_key` that the desk did not send (placed by hand on the
        venue's site, say), off the book; return its venue order id."""
        raise NotImplementedError

    async def _step_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.profile.interval * self.rng.uniform(0.5, 1.5))
            for book in self.books.values():
                changes = book.step(loop.time())
                if changes:
                    self.publish(book, changes)

    def symbol(self, symbol: str | None, markets: Mapping[str, MarketSpec]) -> str | None:
        """The venue symbol for a canonical or venue symbol; None means every symbol."""
        if symbol is None or symbol in self.books:
            return symbol
        if symbol in markets and self.name in markets[symbol].listings:
            return markets[symbol].listings[self.name].symbol
        raise ValueError(f"{self.name} does not list {symbol}")

    def inject(
        self, fault: str, symbol: str | None, seconds: float | None, delay: float | None
    ) -> None:
        """Apply one of FAULTS to this venue (`symbol` narrows a one-shot fault)."""
        if fault == "drop":
            for session in list(self.sessions):
                session.ws.transport.abort()
        elif fault == "malformed":
            for session in self.sessions:
                session.send(self.malformed)
        elif fault in self.one_shots:
            for session in self.sessions:
                session.arm(fault, symbol)
        elif fault in TIME_BOXED:
            self.faults.start(fault, seconds, delay)
        else:
            raise ValueError(f"{fault} does not apply to {self.name}")

    def refusing(self) -> bool:
        return self.faults.refusing()
