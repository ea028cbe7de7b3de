"""The connection manager: its backoff, idle detection and circuit breaker step by step, and
whole connections against real loopback WebSocket servers (Coinbase frames)."""

import asyncio
import itertools
import json
import random
import socket
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import pytest_asyncio
from websockets.asyncio.server import serve

from markets import core
from markets.connection import Connection
from markets.venues.binance.feed import BinanceFeed
from markets.venues.coinbase.feed import CoinbaseFeed
from markets.venues.events import FetchSnapshot

CORES = [which for which in (core.REFERENCE, core.COMPILED) if which is not None]


class FakeCoinbase:
    """A loopback Advanced Trade server: ack, snapshot, then heartbeats, one counter per socket."""

    def __init__(self, *, drop_first: bool = False, stall: bool = False) -> None:
        self.drop_first = drop_first
        self.stall = stall
        self.connections = 0
        self.opened: list[float] = []  # monotonic time of each connection
        self.received: list[dict] = []
        self.release_snapshot = asyncio.Event()
        self.release_snapshot.set()

    async def handler(self, ws) -> None:
        self.connections += 1
        self.opened.append(time.monotonic())
        number = self.connections
        seq = iter(range(1_000_000))
        for _ in range(2):
            self.received.append(json.loads(await ws.recv()))
        await ws.send(self.frame(next(seq), "subscriptions", [{"subscriptions": {}}]))
        if number > 1:
            await self.release_snapshot.wait()
        snapshot = {
            "type": "snapshot",
            "product_id": "BTC-USD",
            "updates": [
                {"side": "bid", "price_level": "100", "new_quantity": "1"},
                {"side": "offer", "price_level": "101", "new_quantity": "2"},
            ],
        }
        await ws.send(self.frame(next(seq), "l2_data", [snapshot]))
        if self.drop_first and number == 1:
            return  # closing the socket
        if self.stall and number == 1:
            await ws.wait_closed()  # silent until the client gives up
        while True:
            await asyncio.sleep(0.02)
            await ws.send(self.frame(next(seq), "heartbeats", [{"heartbeat_counter": 1}]))

    @staticmethod
    def frame(seq: int, channel: str, events: list) -> str:
        return json.dumps(
            {
                "channel": channel,
                "timestamp": "2023-02-09T20:32:50.714964855Z",
                "sequence_num": seq,
                "events": events,
            }
        )


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connection_to(port: int, **options) -> Connection:
    feed = CoinbaseFeed("coinbase", f"ws://127.0.0.1:{port}", {"BTC-USD": "BTC-USD"})
    defaults = {"backoff_base": 0.01, "backoff_max": 0.05, "idle_timeout": 0.5}
    return Connection(feed, **(defaults | options))


@pytest_asyncio.fixture
async def running():
    """Run connections as tasks and stop them after the test."""
    tasks: list[tuple[Connection, asyncio.Task]] = []

    def start(conn: Connection) -> Connection:
        tasks.append((conn, asyncio.create_task(conn.run())))
        return conn

    yield start
    for conn, task in tasks:
        conn.stop()
        await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_subscribes_and_goes_live(running):
    server = FakeCoinbase()
    frames, changed = [], []
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        conn = running(
            connection_to(
                port,
                on_frame=lambda *args: frames.append(args[3]),
                on_books_changed=lambda venue, markets: changed.append((venue, markets)),
            )
        )

        await until(lambda: conn.state == "live" and conn.feed.books["BTC-USD"].valid)

        assert [m["channel"] for m in server.received] == ["level2", "heartbeats"]
        assert ("coinbase", ["BTC-USD"]) in changed
        assert frames[:3] == ["sent", "sent", "recv"]
        health = conn.health()
        assert health["state"] == "live" and health["books_valid"] == 1
        assert health["frames"] >= 2 and health["last_frame_age"] < 1


@pytest.mark.asyncio
async def test_dropped_connection_reconnects_and_books_are_invalid_until_a_new_snapshot(running):
    server = FakeCoinbase(drop_first=True)
    server.release_snapshot.clear()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        conn = running(connection_to(ws_server.sockets[0].getsockname()[1]))
        book = conn.feed.books["BTC-USD"]

        await until(lambda: server.connections == 2 and len(server.received) == 4)
        assert conn.reconnects == 1
        assert not book.valid

        server.release_snapshot.set()
        await until(lambda: book.valid)

        assert conn.state == "live" and conn.health()["reconnects"] == 1


@pytest.fixture
def ceiling(monkeypatch):
    """Make every jittered delay its ceiling, so the schedule itself can be read."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


def test_backoff_doubles_with_each_failure_in_a_row_up_to_its_cap(ceiling):
    conn = connection_to(1, backoff_base=1.0, backoff_max=30.0, circuit_threshold=10)
    delays = []
    for failures in range(10):
        conn.failures = failures
        delays.append(conn.retry_delay())

    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert conn.state == "backing_off"


def test_backoff_delays_are_drawn_at_random_between_zero_and_the_ceiling():
    random.seed(5)
    conn = connection_to(1, backoff_base=1.0, backoff_max=30.0)
    conn.failures = 3

    delays = [conn.retry_delay() for _ in range(200)]

    assert all(0 <= delay <= 8 for delay in delays)
    assert min(delays) < 2 and max(delays) > 6


@pytest.mark.asyncio
async def test_backoff_starts_again_from_its_base_after_a_good_connection(running, ceiling):
    port = free_port()
    conn = running(connection_to(port, circuit_threshold=100))
    await until(lambda: conn.failures >= 4)

    server = FakeCoinbase()
    async with serve(server.handler, "127.0.0.1", port):
        await until(lambda: conn.state == "live")

        assert conn.failures == 0
        assert conn.retry_delay() == conn.backoff_base


@pytest.mark.asyncio
async def test_a_socket_quiet_for_the_idle_limit_is_dropped_and_a_new_one_opened(running):
    server = FakeCoinbase(stall=True)
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        conn = running(connection_to(ws_server.sockets[0].getsockname()[1], idle_timeout=0.2))
        await until(lambda: conn.state == "live")

        await until(lambda: server.connections == 2)
        await until(lambda: conn.state == "live" and conn.feed.books["BTC-USD"].valid)

        # The first socket fell silent after its snapshot: dropped once the idle limit passed.
        assert server.opened[1] - server.opened[0] >= 0.2  # not before the idle limit
        assert conn.health()["idle_timeouts"] == 1
        assert conn.reconnects == 1


@pytest.mark.asyncio
async def test_a_socket_that_keeps_sending_within_the_idle_limit_is_kept(running):
    server = FakeCoinbase()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        conn = running(connection_to(ws_server.sockets[0].getsockname()[1], idle_timeout=0.2))
        await until(lambda: conn.state == "live")

        await asyncio.sleep(0.8)

        assert (server.connections, conn.idle_timeouts, conn.state) == (1, 0, "live")


def test_the_circuit_opens_when_failures_in_a_row_reach_the_threshold():
    conn = connection_to(1, circuit_threshold=3, circuit_cooldown=300.0)
    conn.failures = 2
    backing_off = conn.retry_delay()
    state_before = conn.state

    conn.failures = 3

    assert (state_before, backing_off <= conn.backoff_max) == ("backing_off", True)
    assert (conn.retry_delay(), conn.state) == (300.0, "circuit_open")


@pytest.mark.asyncio
async def test_an_open_circuit_waits_its_cooldown_before_each_single_trial(running):
    attempts: list[float] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = running(connection_to(port, circuit_threshold=3, circuit_cooldown=0.4))
    await until(lambda: len(attempts) == 5)
    await until(lambda: conn.state == "circuit_open")
    server.close()

    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert max(gaps[:2]) < 0.2  # backing off between the first three failures
    # Open: each attempt after the cool-down is one trial, and its failure opens it again.
    assert all(0.4 <= gap < 0.8 for gap in gaps[2:])


@pytest.mark.asyncio
async def test_circuit_opens_after_refused_attempts_and_a_trial_that_connects_closes_it(running):
    port = free_port()
    conn = running(connection_to(port, circuit_threshold=3, circuit_cooldown=0.3))

    await until(lambda: conn.state == "circuit_open")
    assert conn.failures >= 3 and conn.feed.books["BTC-USD"].valid is False

    server = FakeCoinbase()
    async with serve(server.handler, "127.0.0.1", port):
        await until(lambda: conn.state == "live")

        assert conn.failures == 0
        assert conn.health()["state"] == "live"


@pytest.mark.asyncio
async def test_a_live_socket_with_no_frame_for_the_freeze_limit_shows_frozen_and_is_kept(running):
    server = FakeCoinbase(stall=True)
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        conn = running(connection_to(ws_server.sockets[0].getsockname()[1], idle_timeout=5))
        conn.feed.freeze_after = 0.2
        await until(lambda: conn.state == "live")

        await until(lambda: conn.health()["state"] == "frozen", timeout=2)

        # Frozen is what the desk reads; the socket is only dropped at the idle limit.
        assert (server.connections, conn.state, conn.idle_timeouts) == (1, "live", 0)


@pytest.mark.parametrize(
    ("state", "age", "shown"),
    [("live", 0.1, "live"), ("live", 3.1, "frozen"), ("live", None, "live"), ("stale", 9, "stale")],
)
def test_only_a_live_connection_past_its_feeds_freeze_limit_reads_frozen(state, age, shown):
    conn = connection_to(free_port())
    conn.feed.freeze_after = 3.0
    conn.state = state

    assert conn.shown_state(age) == shown


class Answer:
    """One scripted answer of the snapshot server: status, headers, body, and whether the body
    is cut short (fewer bytes sent than its Content-Length says, then the socket closed)."""

    def __init__(self, body: bytes, status: int = 200, headers=(), cut_short: bool = False):
        self.body, self.status, self.headers, self.cut_short = body, status, headers, cut_short


GOOD_SNAPSHOT = Answer(b'{"lastUpdateId":10,"bids":[["99.0","1"]],"asks":[["101.0","2"]]}')


@pytest.fixture
def snapshot_server():
    """A local HTTP server answering each GET with the next scripted `Answer` (the last one
    again once the script runs out); yields (base URL, script, paths asked)."""
    script: list[Answer] = []
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            answer = script[min(len(asked), len(script)) - 1]
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            length = len(answer.body) * (2 if answer.cut_short else 1)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script, asked
    server.shutdown()
    server.server_close()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The pauses the code under test asks for, recorded instead of waited for."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:
        asked.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return asked


def diff(first: int, last: int) -> str:
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data | {"b": [], "a": []}})


def binance_to(rest_url: str, which) -> tuple[Connection, FetchSnapshot]:
    """A Binance connection on `which` core whose one book just asked for its snapshot."""
    with core.using(which):
        feed = BinanceFeed("binance", "wss://x", {"BTC-USDT": "BTCUSDT"}, rest_url=rest_url)
    conn = Connection(feed, backoff_base=1.0, backoff_max=30.0)
    feed.handle(diff(6, 11), 1.0)
    (action,) = feed.take_actions()
    return conn, action


@pytest.mark.asyncio
@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
async def test_a_snapshot_download_that_fails_any_way_is_asked_again_until_the_book_syncs(
    which, snapshot_server, sleeps, caplog
):
    url, script, asked = snapshot_server
    script += [Answer(b'{"lastUpdateId":', cut_short=True), Answer(b"\xff\xfe"), GOOD_SNAPSHOT]
    conn, action = binance_to(url, which)

    with caplog.at_level("WARNING", logger="markets"):
        await conn._fetch_snapshot(None, action)

    book = conn.feed.books["BTC-USDT"]
    assert len(asked) == 3 and len(sleeps) == 2
    assert book.valid and book.sequence == 11 and not conn.feed.requested
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert "IncompleteRead" in warnings[0] and "UnicodeDecodeError" in warnings[1]
    assert conn.feed.stats.malformed == 0  # a failed download is not a frame of the venue's


@pytest.mark.asyncio
async def test_a_snapshot_fetch_that_ends_in_error_lets_the_next_diff_ask_again(
    snapshot_server, monkeypatch
):
    url, script, _ = snapshot_server
    script.append(GOOD_SNAPSHOT)
    conn, action = binance_to(url, core.active())

    def recorder_fails(*args):
        raise RuntimeError("recorder full")

    monkeypatch.setattr(conn, "on_frame", recorder_fails)
    await conn._fetch_snapshot(None, action)
    conn.feed.handle(diff(12, 13), 2.0)

    assert [type(a) for a in conn.feed.take_actions()] == [FetchSnapshot]


def rate_limited(retry_after: str) -> Answer:
    return Answer(b'{"code":-1003,"msg":"Too many requests."}', 429, [("Retry-After", retry_after)])


@pytest.mark.asyncio
async def test_snapshot_retries_back_off_growing_and_wait_at_least_the_venues_retry_after(
    snapshot_server, sleeps, ceiling
):
    url, script, asked = snapshot_server
    script += [
        rate_limited("3"),
        rate_limited("3"),
        Answer(
            b'{"code":-1003,"msg":"Way too many requests; IP banned."}', 418, [("Retry-After", "7")]
        ),
        Answer(b"busy", 503),
        rate_limited("soon"),  # not delay-seconds: the backoff alone
        GOOD_SNAPSHOT,
    ]
    conn, action = binance_to(url, core.active())

    await conn._fetch_snapshot(None, action)

    # The ceilings of full jitter from 1 s are 1, 2, 4, 8, 16: below a Retry-After, it wins.
    assert sleeps == [3, 3, 7, 8, 16]
    assert len(asked) == 6 and conn.feed.books["BTC-USDT"].valid


@pytest.mark.asyncio
async def test_snapshot_backoff_starts_again_from_its_base_after_a_snapshot_came(
    snapshot_server, sleeps, ceiling
):
    url, script, _ = snapshot_server
    script += [Answer(b"busy", 503), Answer(b"busy", 503), GOOD_SNAPSHOT, Answer(b"busy", 503)]
    script.append(GOOD_SNAPSHOT)
    conn, action = binance_to(url, core.active())
    await conn._fetch_snapshot(None, action)
    conn.feed.handle(diff(20, 21), 2.0)  # a gap: the book asks for a new snapshot
    (again,) = conn.feed.take_actions()

    await conn._fetch_snapshot(None, again)

    assert sleeps == [1, 2, 1]


def test_snapshot_backoff_is_drawn_at_random_but_never_below_the_retry_after():
    random.seed(5)
    conn = connection_to(1, backoff_base=1.0, backoff_max=30.0)
    error = urllib.error.HTTPError("http://x", 429, "Too Many Requests", {"Retry-After": "2"}, None)

    delays = [conn.snapshot_delay(3, error) for _ in range(200)]

    assert all(2 <= delay <= 8 for delay in delays)
    assert min(delays) == 2 and max(delays) > 6
