"""Simulated Coinbase, Kraken and Binance market-data venues on one loopback port.

Each speaks its venue's real public protocol, so the product's adapters connect unchanged.
"""

import asyncio
import ipaddress
import itertools
import json
import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from markets.book import checksum_fragment

logger = logging.getLogger(__name__)

VENUES = ("coinbase", "kraken", "binance")
FAULTS = ("drop", "stall", "gap", "bad_checksum", "malformed", "refuse", "slow")
# The shared mid is an integer count of this unit, so every venue's tick divides it exactly.
UNIT = Decimal("0.00000001")
KRAKEN_DEPTHS = (10, 25, 100, 500, 1000)
BINANCE_MAX_LIMIT = 5000
Levels = dict[int, int]  # price in ticks -> size in lots
Change = tuple[str, int, int]  # side ("bid"/"ask"), price ticks, new lots (0 removes)


@dataclass(frozen=True, slots=True)
class Listing:
    """How one venue lists a market: its symbol, price tick and size lot."""

    symbol: str
    tick: Decimal
    lot: Decimal

    def price_text(self, ticks: int, places: int | None = None) -> str:
        return _fixed(ticks * self.tick, self.tick if places is None else places)

    def qty_text(self, lots: int, places: int | None = None) -> str:
        return _fixed(lots * self.lot, self.lot if places is None else places)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One canonical market: starting mid, typical best-level size, and each venue's listing."""

    mid: Decimal
    size: Decimal
    listings: Mapping[str, Listing]
    volatility_bps: float = 0.5  # standard deviation of the mid per market step


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """How a venue's books behave: cadence, staleness, noise around the mid, spread and depth."""

    interval: float  # seconds between book changes
    latency: float  # how far behind the shared mid the venue's view lags, seconds
    noise_bps: float  # spread of its mean-reverting offset from the shared mid
    half_spread_bps: float
    levels: int  # price levels per side
    span_bps: float  # distance from the best level to the deepest


@dataclass(frozen=True, slots=True)
class Timing:
    """Clock settings shared by all venues; tests shrink them to run in seconds."""

    market_interval: float = 0.1
    heartbeat: float = 1.0
    subscribe_timeout: float = 5.0
    binance_batch: float = 0.1
    binance_ping: float = 20.0
    binance_ping_timeout: float = 60.0
    dislocation_every: tuple[float, float] = (10.0, 20.0)
    dislocation_for: tuple[float, float] = (1.0, 5.0)
    dislocation_bps: tuple[int, int] = (60, 120)


def _listings(coinbase: Listing, kraken: Listing, binance: Listing) -> dict[str, Listing]:
    return {"coinbase": coinbase, "kraken": kraken, "binance": binance}


SATOSHI = Decimal("0.00000001")
DEFAULT_MARKETS: dict[str, MarketSpec] = {
    "BTC-USD": MarketSpec(
        mid=Decimal(60000),
        size=Decimal("0.5"),
        listings=_listings(
            Listing("BTC-USD", Decimal("0.01"), SATOSHI),
            Listing("BTC/USD", Decimal("0.1"), SATOSHI),
            Listing("BTCUSDT", Decimal("0.01"), Decimal("0.00001")),
        ),
    ),
    "ETH-USD": MarketSpec(
        mid=Decimal(3000),
        size=Decimal(5),
        listings=_listings(
            Listing("ETH-USD", Decimal("0.01"), SATOSHI),
            Listing("ETH/USD", Decimal("0.01"), SATOSHI),
            Listing("ETHUSDT", Decimal("0.01"), Decimal("0.0001")),
        ),
    ),
}
DEFAULT_PROFILES: dict[str, VenueProfile] = {
    "coinbase": VenueProfile(0.1, 0.0, 2.0, 0.3, 50, 30.0),
    "kraken": VenueProfile(0.2, 0.05, 3.0, 0.8, 40, 40.0),
    "binance": VenueProfile(0.05, 0.02, 1.5, 0.2, 50, 25.0),
}


def kraken_checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken v2 CRC32 over the top 10 asks then top 10 bids, each (price, qty) text best-first."""
    parts = [checksum_fragment(p, q) for p, q in [*asks[:10], *bids[:10]]]
    return zlib.crc32("".join(parts).encode())


def _fixed(value: Decimal, places: Decimal | int) -> str:
    if isinstance(places, Decimal):
        places = max(0, -places.as_tuple().exponent)
    return f"{value:.{places}f}"


def _trimmed(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _rfc3339(places: int) -> str:
    seconds, nanos = divmod(time.time_ns(), 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{nanos // 10 ** (9 - places):0{places}d}Z"


def _best_first(levels: Levels, side: str, n: int | None = None) -> list[int]:
    return sorted(levels, reverse=side == "bid")[:n]


def _diff(side: str, old: Levels, new: Levels) -> list[Change]:
    removed = [(side, p, 0) for p in old if p not in new]
    return removed + [(side, p, q) for p, q in new.items() if old.get(p) != q]


class Book:
    """One venue's L2 book in integer ticks and lots, moved step by step after a mid."""

    def __init__(self, rng: random.Random, profile: VenueProfile, size_lots: int) -> None:
        self.rng = rng
        self.profile = profile
        self.size_lots = size_lots
        self.bids: Levels = {}
        self.asks: Levels = {}
        self.previous: tuple[Levels, Levels] = ({}, {})
        self.gap = 1

    def step(self, mid_ticks: int) -> list[Change]:
        """Move the book to a new mid; return every level that changed."""
        self.previous = (dict(self.bids), dict(self.asks))
        profile = self.profile
        self.gap = max(1, round(mid_ticks * profile.span_bps / 10_000 / profile.levels))
        half = max(1, round(mid_ticks * profile.half_spread_bps * self.rng.uniform(0.5, 1.5) / 1e4))
        self._move(self.bids, mid_ticks - half, -1)
        self._move(self.asks, mid_ticks + half, 1)
        self._churn(self.bids, -1)
        self._churn(self.asks, 1)
        return _diff("bid", self.previous[0], self.bids) + _diff("ask", self.previous[1], self.asks)

    def side(self, side: str) -> Levels:
        return self.bids if side == "bid" else self.asks

    def _size(self, rank: int) -> int:
        # Deeper levels hold more: that is what makes walking the book matter.
        return max(1, round(self.size_lots * (1 + rank / 8) * self.rng.uniform(0.2, 1.8)))

    def _move(self, levels: Levels, best: int, direction: int) -> None:
        """Take out levels through the new best, refill holes near the top, keep the depth."""
        for price in [p for p in levels if (p - best) * direction < 0]:
            del levels[price]
        levels.setdefault(best, self._size(0))
        ordered = sorted(levels, key=lambda p: (p - best) * direction)
        filled = 0
        for rank, (near, far) in enumerate(itertools.pairwise(ordered)):
            if filled == 5:
                break
            if (far - near) * direction > 3 * self.gap:
                hole = near + direction * self.rng.randint(self.gap, 2 * self.gap)
                levels[hole] = self._size(rank)
                filled += 1
        ordered = sorted(levels, key=lambda p: (p - best) * direction)
        while len(ordered) > self.profile.levels:
            del levels[ordered.pop()]
        worst = ordered[-1]
        while len(levels) < self.profile.levels:
            worst += direction * self.rng.randint(1, 2 * self.gap)
            levels[worst] = self._size(len(levels))

    def _churn(self, levels: Levels, direction: int) -> None:
        ordered = sorted(levels, key=lambda p: p * direction)
        for _ in range(self.rng.randint(1, 3)):
            rank = min(int(self.rng.expovariate(0.2)), len(ordered) - 1)
            if rank and self.rng.random() < 0.2:
                levels.pop(ordered[rank], None)
            else:
                levels[ordered[rank]] = self._size(rank)


class Market:
    """The shared random-walk mid of one canonical market and its dislocation schedule."""

    def __init__(self, spec: MarketSpec, rng: random.Random, timing: Timing, start: float) -> None:
        self.spec = spec
        self.rng = rng
        self.timing = timing
        self.start = start
        self.anchor = int(spec.mid / UNIT)
        self.history: deque[int] = deque([self.anchor], maxlen=256)
        self.steps = 0
        self.dislocation: tuple[str, int, int] | None = None  # venue, signed bps, last step
        self.next_dislocation = self._steps(timing.dislocation_every)

    def mid(self, now: float, latency: float) -> int:
        """The mid in UNITs as a venue `latency` seconds behind sees it at `now`."""
        target = int((now - self.start) / self.timing.market_interval)
        while self.steps < target:
            self._step()
        lag = int(latency / self.timing.market_interval)
        return self.history[max(0, len(self.history) - 1 - lag)]

    def offset_bps(self, venue: str) -> int:
        if self.dislocation and self.dislocation[0] == venue:
            return self.dislocation[1]
        return 0

    def _steps(self, seconds: tuple[float, float]) -> int:
        return max(1, round(self.rng.uniform(*seconds) / self.timing.market_interval))

    def _step(self) -> None:
        self.steps += 1
        mid = self.history[-1]
        # A weak pull to the start keeps long demo runs near the configured price.
        drift = (self.anchor - mid) / 2000
        shock = mid * self.spec.volatility_bps / 10_000 * self.rng.gauss(0, 1)
        self.history.append(max(1, mid + round(drift + shock)))
        if self.dislocation and self.steps > self.dislocation[2]:
            self.dislocation = None
            self.next_dislocation = self.steps + self._steps(self.timing.dislocation_every)
        if self.dislocation is None and self.steps >= self.next_dislocation:
            venue = self.rng.choice(sorted(self.spec.listings))
            bps = self.rng.randint(*self.timing.dislocation_bps) * self.rng.choice((-1, 1))
            self.dislocation = (venue, bps, self.steps + self._steps(self.timing.dislocation_for))


class VenueBook:
    """One market as one venue quotes it: the shared mid plus its own noise and dislocation."""

    def __init__(self, venue: str, market: Market, profile: VenueProfile, seed: str) -> None:
        self.venue = venue
        self.market = market
        self.profile = profile
        self.listing = market.spec.listings[venue]
        self.rng = random.Random(seed)
        self.noise = 0.0
        self.tick_units = int(self.listing.tick / UNIT)
        self.book = Book(self.rng, profile, max(1, int(market.spec.size / self.listing.lot)))

    @property
    def symbol(self) -> str:
        return self.listing.symbol

    def step(self, now: float) -> list[Change]:
        # AR(1): the venue wanders around the shared mid but never far.
        self.noise = 0.9 * self.noise + self.rng.gauss(0, self.profile.noise_bps * 0.436)
        mid = self.market.mid(now, self.profile.latency)
        bps = self.noise + self.market.offset_bps(self.venue)
        return self.book.step(round(mid * (1 + bps / 10_000)) // self.tick_units)

    def best(self) -> tuple[Decimal, Decimal]:
        """Best bid and ask prices, for oracles in tests and demos."""
        tick = self.listing.tick
        return max(self.book.bids) * tick, min(self.book.asks) * tick


@dataclass(slots=True)
class Faults:
    """A venue's time-boxed faults, as loop times until which each lasts."""

    stall_until: float = 0.0
    refuse_until: float = 0.0
    slow_until: float = 0.0
    delay: float = 0.0

    async def hold(self, queued_at: float) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self.stall_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        if loop.time() < self.slow_until:
            await asyncio.sleep(max(0.0, queued_at + self.delay - loop.time()))


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


class Venue:
    """What the three venues share: books, sessions, the stepping clock and fault injection."""

    name = ""
    malformed = "{"

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        self.books = {b.symbol: b for b in books}
        self.timing = timing
        self.sessions: set[Session] = set()
        self.faults = Faults()
        self.profile = books[0].profile
        self.rng = random.Random(f"{books[0].rng.random()}:clock")

    def clocks(self) -> list[Awaitable[None]]:
        return [self._step_forever()]

    async def _step_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for book in self.books.values():
            book.step(loop.time())
        while True:
            await asyncio.sleep(self.profile.interval * self.rng.uniform(0.5, 1.5))
            for book in self.books.values():
                changes = book.step(loop.time())
                if changes:
                    self.publish(book, changes)

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        raise NotImplementedError

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        raise NotImplementedError

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
        now = asyncio.get_running_loop().time()
        if fault == "drop":
            for session in list(self.sessions):
                session.ws.transport.abort()
        elif fault == "stall":
            self.faults.stall_until = now + (seconds or 5.0)
        elif fault == "refuse":
            self.faults.refuse_until = now + (seconds or 5.0)
        elif fault == "slow":
            self.faults.slow_until = now + (seconds or 10.0)
            self.faults.delay = 0.5 if delay is None else delay
        elif fault == "malformed":
            for session in self.sessions:
                session.send(self.malformed)
        elif fault == "bad_checksum" and self.name != "kraken":
            raise ValueError("bad_checksum applies to kraken only")
        else:
            for session in self.sessions:
                session.arm(fault, symbol)

    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self.faults.refuse_until


class Coinbase(Venue):
    """Coinbase Advanced Trade: `level2` and `heartbeats` channels, one sequence per connection."""

    name = "coinbase"
    malformed = '{"channel":"l2_data","timestamp":"'

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
        stamp = _rfc3339(9)
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
        envelope = {"channel": channel, "timestamp": _rfc3339(9), "sequence_num": seq}
        session.send(json.dumps({**envelope, "events": events}, separators=(",", ":")))

    @staticmethod
    def _level(listing: Listing, side: str, price: int, lots: int, stamp: str) -> dict:
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
            for p in _best_first(book.book.side(side), side)
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
        stamp = _rfc3339(9).replace("T", " ").removesuffix("Z")
        return f"{stamp} +0000 UTC m=+{time.monotonic():.9f}"


class Kraken(Venue):
    """Kraken Spot WebSocket v2 `book` channel with CRC32 checksums over the subscribed window."""

    name = "kraken"
    malformed = '{"channel":"book","type":"update","data":[{"symbol":'

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
        stamp = _rfc3339(6)
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
            old_top, new_top = _best_first(old, side, depth), _best_first(new, side, depth)
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
            top = _best_first(levels, side, 10)
            return [(listing.price_text(p), listing.qty_text(levels[p])) for p in top]

        return kraken_checksum(texts("ask"), texts("bid"))

    def _snapshot(self, book: VenueBook, depth: int) -> str:
        def top(side: str) -> list[tuple[int, int]]:
            levels = book.book.side(side)
            return [(p, levels[p]) for p in _best_first(levels, side, depth)]

        return self._frame("snapshot", book, top("bid"), top("ask"), self._checksum(book))

    def _receive(self, session: Session, raw: str | bytes) -> None:
        time_in = _rfc3339(6)
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
        elif depth not in KRAKEN_DEPTHS:
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
        session.send(json.dumps({**fields, "time_in": time_in, "time_out": _rfc3339(6)}))

    async def _heartbeats(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            # Kraken sends heartbeats after the first subscription, and only when idle.
            idle = loop.time() - session.last_sent >= self.timing.heartbeat * 0.9
            if session.subscribed and idle:
                session.send('{"channel":"heartbeat"}')


class Binance(Venue):
    """Binance spot diff depth: `<symbol>@depth@100ms` streams plus the REST depth snapshot."""

    name = "binance"
    malformed = '{"e":"depthUpdate","E":'

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.last_id = {s: b.rng.randint(10**8, 10**9) for s, b in self.books.items()}
        self.first_pending: dict[str, int] = {}
        self.pending: dict[str, dict[tuple[str, int], int]] = {s: {} for s in self.books}

    def clocks(self) -> list[Awaitable[None]]:
        return [*super().clocks(), self._emit_forever()]

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        # Every level change gets its own update id; events carry 100 ms batches of them.
        symbol = book.symbol
        self.first_pending.setdefault(symbol, self.last_id[symbol] + 1)
        self.last_id[symbol] += len(changes)
        for side, price, lots in changes:
            self.pending[symbol][side, price] = lots

    async def _emit_forever(self) -> None:
        while True:
            await asyncio.sleep(self.timing.binance_batch)
            for symbol in list(self.first_pending):
                self._emit(self.books[symbol], self.first_pending.pop(symbol))

    def _emit(self, book: VenueBook, first: int) -> None:
        symbol, listing = book.symbol, book.listing
        changes = self.pending[symbol]
        self.pending[symbol] = {}

        def levels(want: str) -> list[list[str]]:
            return [
                [listing.price_text(p, 8), listing.qty_text(q, 8)]
                for (side, p), q in sorted(changes.items())
                if side == want
            ]

        event = {
            "e": "depthUpdate",
            "E": time.time_ns() // 1_000_000,
            "s": symbol,
            "U": first,
            "u": self.last_id[symbol],
            "b": levels("bid"),
            "a": levels("ask"),
        }
        raw = json.dumps(event, separators=(",", ":"))
        streams = (f"{symbol.lower()}@depth@100ms", f"{symbol.lower()}@depth")
        for session in self.sessions:
            stream = next((s for s in streams if s in session.subs), None)
            if stream is None or session.take("gap", symbol):
                continue
            session.send(f'{{"stream":"{stream}","data":{raw}}}' if session.combined else raw)

    def depth(self, query: dict[str, list[str]]) -> tuple[HTTPStatus, dict]:
        """GET /api/v3/depth: the book as of `lastUpdateId`, consistent with the stream."""
        symbol = query.get("symbol", [""])[0].upper()
        book = self.books.get(symbol)
        if book is None:
            return HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."}
        try:
            limit = min(int(query.get("limit", ["100"])[0]), BINANCE_MAX_LIMIT)
        except ValueError:
            return HTTPStatus.BAD_REQUEST, {"code": -1100, "msg": "Illegal characters in limit."}

        def levels(side: str) -> list[list[str]]:
            sizes = book.book.side(side)
            return [
                [book.listing.price_text(p, 8), book.listing.qty_text(sizes[p], 8)]
                for p in _best_first(sizes, side, limit)
            ]

        body = {"lastUpdateId": self.last_id[symbol], "bids": levels("bid"), "asks": levels("ask")}
        return HTTPStatus.OK, body

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        session.combined = path == "/binance/stream"
        names = query.get("streams", [""])[0] if session.combined else path.rsplit("/", 1)[-1]
        session.subs.update(dict.fromkeys(filter(None, names.split("/")), 0))
        pings = asyncio.create_task(self._ping(session))
        try:
            async for raw in session.ws:
                self._receive(session, raw)
        finally:
            pings.cancel()

    def _receive(self, session: Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            method, request_id = message["method"], message.get("id")
            params = message.get("params") or []
        except (ValueError, KeyError, TypeError):
            error = {"code": 3, "msg": "Invalid JSON: expected a request object"}
            return session.send(json.dumps({"error": error, "id": None}))
        result = None
        if method == "SUBSCRIBE":
            session.subs.update(dict.fromkeys(params, 0))
        elif method == "UNSUBSCRIBE":
            for stream in params:
                session.subs.pop(stream, None)
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(session.subs)
        else:
            error = {"code": 2, "msg": f"Invalid request: unknown method {method}"}
            return session.send(json.dumps({"error": error, "id": request_id}))
        session.send(json.dumps({"result": result, "id": request_id}))

    async def _ping(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.timing.binance_ping)
            if loop.time() < self.faults.stall_until:
                continue
            try:
                pong = await session.ws.ping()
                await asyncio.wait_for(pong, self.timing.binance_ping_timeout)
            except TimeoutError:
                await session.ws.close(1008, "pong timeout")
                return
            except ConnectionClosed:
                return


VENUE_TYPES: dict[str, type[Venue]] = {"coinbase": Coinbase, "kraken": Kraken, "binance": Binance}


class VenueSimulator:
    """Serves the simulated venues on one port; start with `async with` or `start()`/`stop()`.

    Paths: /coinbase, /kraken/v2, /binance/stream?streams=.., /binance/ws/<stream>,
    GET /binance/api/v3/depth, and POST /control/<venue>/<fault> from loopback only.
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
        self.venues: dict[str, Venue] = {}
        self._server: Server | None = None
        self._clocks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Build the markets, start their clocks and listen; `port` is then the bound port."""
        start = asyncio.get_running_loop().time()
        markets = {
            symbol: Market(spec, random.Random(f"{self.seed}:{symbol}"), self.timing, start)
            for symbol, spec in self.markets.items()
        }
        for venue, venue_type in VENUE_TYPES.items():
            books = [
                VenueBook(venue, market, self.profiles[venue], f"{self.seed}:{venue}:{symbol}")
                for symbol, market in markets.items()
                if venue in market.spec.listings
            ]
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
        """Where each venue lives; Binance streams and REST paths hang off their bases."""
        ws, http = f"ws://{self.host}:{self.port}", f"http://{self.host}:{self.port}"
        return {
            "coinbase": f"{ws}/coinbase",
            "kraken": f"{ws}/kraken/v2",
            "binance": f"{ws}/binance",
            "binance_rest": f"{http}/binance",
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

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path, query = url.path.rstrip("/"), parse_qs(url.query)
        if path.startswith("/control/"):
            return self._control(conn, request, path, query)
        venue = self.venues.get(path.split("/")[1] if path.count("/") else "")
        if venue is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such venue\n")
        if venue.refusing():
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refusing connections\n")
        if path == "/binance/api/v3/depth" and isinstance(venue, Binance):
            return _json_response(conn, *venue.depth(query))
        if _route(path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "no such stream\n")
        return None

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
        venue = self.venues[_route(path)]
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


def _route(path: str) -> str | None:
    """Which venue serves a websocket path, if any."""
    if path == "/coinbase":
        return "coinbase"
    if path == "/kraken/v2":
        return "kraken"
    if path == "/binance/stream" or path.startswith("/binance/ws"):
        return "binance"
    return None


def _json_response(conn: ServerConnection, status: HTTPStatus, body: object) -> Response:
    response = conn.respond(status, json.dumps(body, separators=(",", ":")))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
