"""Live pushes under load, in the deployed shape: daphne and the engine as two processes on
PostgreSQL and Redis, and 200 WebSocket clients logged in as the demo trader.

The engine plays a generated recording at full speed (`run_arbitrage --replay`). Its frames/s,
read from its own /metrics, is measured in phases without and with the clients, alternated so
that noise from the rest of the machine falls on both. Push latency runs from the publish stamp
in each fragment (`data-published`) to its receipt by a client.
"""

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import lean_ws

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "LIVE_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/arbsite_bench_live"
)
REDIS_URL = os.environ.get("LIVE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
CLIENTS = int(os.environ.get("LIVE_BENCH_CLIENTS", "200"))
ROUNDS = int(os.environ.get("LIVE_BENCH_ROUNDS", "4"))
CONNECT_TRIES = 10
OPENING = int(os.environ.get("LIVE_BENCH_OPENING", "20"))  # handshakes under way at once
SETTLE_S = 3.0  # after the clients connect or leave, before a phase is measured
FRAMES = 200_000
TOPICS = "desk,health,opportunities,spreads:BTC-USD,spreads:ETH-USD"
PUBLISHED = re.compile(rb'data-published="([0-9.]+)"')
OPEN_TIMEOUT_S = 60
FRAMES_METRIC = re.compile(r"^arb_feed_frames_total\{[^}]*\} ([0-9.e+]+)$", re.M)


# -- the services and the two processes --------------------------------------------------------


def _missing_services() -> str:
    """What the benchmark needs and cannot reach, or "" when both answer."""
    import psycopg
    import redis

    if not hasattr(os, "sched_getaffinity"):
        return "Linux (CPU affinity, /proc)"
    missing = []
    try:
        psycopg.connect(_server_url(), connect_timeout=3).close()
    except psycopg.Error:
        missing.append(f"PostgreSQL at {DATABASE_URL.rsplit('/', 1)[0]} (LIVE_BENCH_DATABASE_URL)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError:
        missing.append(f"Redis at {REDIS_URL} (LIVE_BENCH_REDIS_URL)")
    return " and ".join(missing)


def _server_url() -> str:
    return DATABASE_URL.rsplit("/", 1)[0] + "/postgres"


def _reset_services(create: bool) -> None:
    """Drop the bench database (and create it afresh with `create`); empty its Redis database."""
    import psycopg
    import redis

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(_server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS_URL).flushdb()


def _environment() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "arbsite.settings",
        "LOG_LEVEL": "WARNING",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _process(args: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """Run `args` for the block's duration, its output in `log`; stopped as a service would be."""
    with open(log, "w") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(probe, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with contextlib.suppress(OSError):
            if probe():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start in {timeout:.0f} s")


def _web_up(base: str) -> bool:
    urllib.request.urlopen(f"{base}/login/", timeout=2).close()
    return True


def _engine_frames(metrics_url: str) -> float:
    """Frames the engine has handled over every feed, from its Prometheus /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(float(value) for value in FRAMES_METRIC.findall(text))


def _django() -> None:
    """Set Django up in this process unless `python -m bench` already did."""
    import django
    from django.apps import apps

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # a bench on this machine, as its processes run
    if not apps.ready:
        django.setup()


# -- inside the bench database's process -------------------------------------------------------


def prepare() -> None:
    """List the recording's markets on the demo venues and print a demo trader's session key."""
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from bench import hot_path
    from markets.models import Exchange, Listing, Market
    from risk.models import RiskProfile

    profile = RiskProfile.objects.get(is_active=True)
    for symbol, spec in hot_path.MARKETS.items():
        base, quote = symbol.split("-")
        market, _ = Market.objects.get_or_create(
            symbol=symbol, defaults={"base": base, "quote": quote}
        )
        profile.allowed_markets.add(market)
        for slug, listing in spec.listings.items():
            Listing.objects.get_or_create(
                exchange=Exchange.objects.get(slug=slug),
                market=market,
                defaults={
                    "venue_symbol": listing.symbol,
                    "tick_size": listing.tick,
                    "lot_size": listing.lot,
                },
            )
    user = get_user_model().objects.get(username="trader")
    # A Trader logs in with a second factor: the session of one who has given the code.
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", confirmed=True)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.create()
    print(session.session_key)


# -- measuring ---------------------------------------------------------------------------------


class Clients:
    """`CLIENTS` WebSockets of one logged-in trader, each recording its pushes' latencies."""

    def __init__(self, port: int, cookie: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/live/?topics={TOPICS}"
        self.headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={cookie}"}
        self.latencies: list[float] = []
        self.batches: set[bytes] = set()  # the publish stamps heard: one per batch of notices
        self.counting = False
        self.connected = 0
        self.failed: list[str] = []
        self.retries = 0  # handshakes tried again
        # Pages open over a moment, not in one millisecond: on a loaded machine 200 handshakes at
        # once each wait behind all the others' database trips and every one misses daphne's 5 s.
        self.opening = asyncio.Semaphore(OPENING)
        self.stop = asyncio.Event()
        self.settled = asyncio.Event()  # every client connected or failed

    async def run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(CLIENTS)))

    async def _open(self) -> lean_ws.LeanSocket:
        """The socket, opened as a page's htmx does: a handshake the server drops (daphne gives
        up on one its application has not accepted in 5 s) is tried again after a pause."""
        tries = 0
        while True:
            try:
                # A browser waits for a busy server, not only 10 s.
                return await asyncio.wait_for(
                    lean_ws.connect(self.url, self.headers, self._heard), OPEN_TIMEOUT_S
                )
            except lean_ws.Dropped:
                tries += 1
                if tries == CONNECT_TRIES:
                    raise
                self.retries += 1
                await asyncio.sleep(random.uniform(0.5, 2.0))

    async def _client(self) -> None:
        try:
            async with self.opening:
                page = await self._open()
            self.connected += 1
            self._settle()
            stopping = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({page.closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not page.closed.done():
                page.close()
            reason = await page.closed
            if reason is not None and not self.stop.is_set():
                raise reason  # the socket closed before the end: its error reported
        except Exception as exc:  # a refused or dropped client is reported, not fatal
            self.failed.append(f"{type(exc).__name__}: {exc}")
            self._settle()

    def _heard(self, message: bytes, received: float) -> None:
        """A push read whole at `received` (time.time()), in the loop's call that read it."""
        if self.counting:
            for stamp in PUBLISHED.findall(message):
                self.latencies.append(received - float(stamp))
                self.batches.add(stamp)

    def _settle(self) -> None:
        if self.connected + len(self.failed) == CLIENTS:
            self.settled.set()


def _cpu_s(pid: int) -> float:
    """CPU seconds used so far by process `pid`."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all but idle and iowait)."""
    with open("/proc/stat") as file:
        ticks = [int(n) for n in file.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    """One measured phase: the engine's frames/s and the CPU cores each side used (the clients:
    this process), over `seconds`."""

    frames_per_s: float
    engine_cores: float
    web_cores: float
    machine_cores: float
    clients_cores: float
    seconds: float


async def _phase(metrics_url: str, engine: int, web: int, seconds: float) -> Phase:
    def sample() -> tuple[float, ...]:
        frames = _engine_frames(metrics_url)
        now = time.perf_counter()
        return now, frames, _cpu_s(engine), _cpu_s(web), _machine_busy_s(), time.process_time()

    first = await asyncio.to_thread(sample)
    await asyncio.sleep(seconds)
    last = await asyncio.to_thread(sample)
    elapsed = last[0] - first[0]
    rates = ((b - a) / elapsed for a, b in zip(first[1:], last[1:], strict=True))
    return Phase(*rates, seconds=elapsed)


async def _measure(port: int, metrics_url: str, engine: int, web: int, cookie: str) -> dict:
    """`ROUNDS` rounds of a phase without clients, then one with them.

    Each phase lasts about one pass of the recording, so every phase holds the same mix of
    frames (snapshots, crossings, quiet stretches) wherever in the recording it starts.
    """
    warm_up = await _phase(metrics_url, engine, web, 5.0)
    phase_s = FRAMES / warm_up.frames_per_s
    alone, loaded, connected, failed, opened, retries = [], [], [], [], [], []
    latencies: list[float] = []
    batches: list[int] = []  # distinct publish stamps the clients heard in each loaded phase
    for _ in range(ROUNDS):
        alone.append(await _phase(metrics_url, engine, web, phase_s))
        clients = Clients(port, cookie)
        opening = time.perf_counter()
        task = asyncio.create_task(clients.run())
        await clients.settled.wait()
        opened.append(time.perf_counter() - opening)
        await asyncio.sleep(SETTLE_S)
        clients.counting = True
        loaded.append(await _phase(metrics_url, engine, web, phase_s))
        clients.counting = False
        clients.stop.set()
        await task
        connected.append(clients.connected)
        retries.append(clients.retries)
        failed += clients.failed
        latencies += clients.latencies
        batches.append(len(clients.batches))
        await asyncio.sleep(SETTLE_S)
    return {
        "phase_s": phase_s,
        "alone": alone,
        "loaded": loaded,
        "connected": connected,
        "failed": failed,
        "opened_s": opened,
        "retries": retries,
        "latencies": latencies,
        "batches": batches,
    }


def main() -> dict:
    print("## Live pushes under load (bench/live_load.py)", flush=True)
    missing = _missing_services()
    if missing:
        print(f"live_load: skipped; it needs {missing}")
        return {"skipped": missing}
    _django()
    from bench import hot_path  # its simulated venues' order code imports the models

    recording = hot_path.recording(FRAMES, seed=1)
    env = _environment()
    _reset_services(create=True)
    before = _load()
    reference = reference_ms()
    try:
        result = _summarise(_run(env, recording))
    finally:
        _reset_services(create=False)
    result["load"] = (before, _load())
    result["reference_ms"] = reference
    _report(result)
    return result


def _load() -> str:
    """The machine's load average: other work on it slows both phases alike, not the ratio."""
    return ", ".join(f"{n:.2f}" for n in os.getloadavg())


def _run(env: dict, recording: Path) -> dict:
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    cookie = subprocess.run(
        [sys.executable, "-m", "bench.live_load", "--prepare"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.split()[-1]  # fmt: skip
    port, metrics_port = _free_port(), _free_port()
    web_args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    web_args.append("arbsite.asgi:application")
    engine_args = [*manage, "run_arbitrage", "--replay", str(recording)]
    engine_args += ["--metrics-port", str(metrics_port)]
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    logs = ROOT / "var" / "bench"
    engine_cpu, everyone = _engine_core()
    env_engine = {**env, "ENGINE_CPUS": str(engine_cpu)} if engine_cpu is not None else env
    try:
        with (
            _process(web_args, env, logs / "live-web.log") as web,
            _process(engine_args, env_engine, logs / "live-engine.log") as engine,
        ):
            _wait_for(lambda: _web_up(f"http://127.0.0.1:{port}"), "daphne", web)
            _wait_for(lambda: _engine_frames(metrics_url) > 0, "the engine", engine)
            result = asyncio.run(_measure(port, metrics_url, engine.pid, web.pid, cookie))
    finally:
        os.sched_setaffinity(0, everyone)
    log = (logs / "live-web.log").read_text().splitlines()
    result["web_errors"] = [line for line in log if "Error" in line]
    result["engine_cpu"] = engine_cpu
    return result


def _engine_core() -> tuple[int | None, set[int]]:
    """Give the engine the last CPU and keep this process and daphne (its child) off it.

    The deployment advice of ENGINE_CPUS; on one CPU there is nothing to give. Returns the
    engine's CPU (or None) and the CPUs this process ran on before.
    """
    everyone = os.sched_getaffinity(0)
    if len(everyone) < 2:
        return None, everyone
    engine_cpu = max(everyone)
    os.sched_setaffinity(0, everyone - {engine_cpu})
    return engine_cpu, everyone


def _summarise(result: dict) -> dict:
    """The figures the report prints, added to `result`."""
    ms = sorted(x * 1000 for x in result.pop("latencies"))
    alone = statistics.median(p.frames_per_s for p in result["alone"])
    loaded = statistics.median(p.frames_per_s for p in result["loaded"])
    clients = max(statistics.median(result["connected"]), 1)
    return {
        **result,
        "fragments": len(ms),
        "fragments_per_s_per_client": len(ms) / (result["phase_s"] * ROUNDS) / clients,
        "p50_ms": statistics.median(ms) if ms else None,
        "p95_ms": ms[min(len(ms) - 1, int(len(ms) * 0.95))] if ms else None,
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else None,
        "alone_fps": alone,
        "loaded_fps": loaded,
        "ratio": loaded / alone,
        # CPU per batch of notices heard (renders and 200 sends; 200 clients reading them).
        "web_ms_per_batch": _per_batch(result, "web_cores"),
        "clients_ms_per_batch": _per_batch(result, "clients_cores"),
    }


def _per_batch(result: dict, cores: str) -> float | None:
    """The median over the rounds of the CPU milliseconds per batch of one side, loaded."""
    pairs = zip(result["loaded"], result["batches"], strict=True)
    each = [getattr(p, cores) * p.seconds * 1000 / n for p, n in pairs if n]
    return statistics.median(each) if each else None


def reference_ms() -> float:
    """A fixed pure-Python loop's milliseconds (median of 5): how fast this machine runs Python
    today, for comparing latencies between machines and days (they scale with it)."""
    times = []
    for _ in range(5):
        start, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _report(result: dict) -> None:
    where = "any CPU" if result["engine_cpu"] is None else f"CPU {result['engine_cpu']}"
    print(
        f"  daphne and the engine as two processes on PostgreSQL and Redis; the engine replays "
        f"{FRAMES:,} recorded frames at full speed, over and over, on {where} (ENGINE_CPUS), "
        f"daphne and the clients on the others\n"
        f"  {CLIENTS} WebSocket clients logged in as the trader, topics {TOPICS}, "
        f"opening {OPENING} at a time\n"
        f"  load average (1, 5, 15 min) before and after: {' / '.join(result['load'])}; "
        f"a fixed Python loop (bench.live_load.reference_ms) {result['reference_ms']:.0f} ms\n"
        f"  connected in each round: {', '.join(map(str, result['connected']))} of {CLIENTS}, "
        f"in {', '.join(f'{s:.1f}' for s in result['opened_s'])} s, handshakes tried again: "
        f"{', '.join(map(str, result['retries']))}"
    )
    for error in sorted(set(result["failed"]))[:5]:
        print(f"  failed: {result['failed'].count(error)} x {error}")
    errors = result["web_errors"]
    print(f"  daphne log: {len(errors)} error lines" + (f", first: {errors[0]}" if errors else ""))
    if result["fragments"]:
        print(
            f"  push latency (publish -> receive): p50 {result['p50_ms']:.0f} ms, "
            f"p95 {result['p95_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms "
            f"over {result['fragments']:,} fragments "
            f"({result['fragments_per_s_per_client']:.1f}/s per client)\n"
            f"  CPU per batch of notices: daphne {result['web_ms_per_batch']:.1f} ms, the "
            f"{CLIENTS} clients {result['clients_ms_per_batch']:.1f} ms "
            f"({', '.join(map(str, result['batches']))} batches in the rounds)"
        )
    else:
        print("  no pushes received")
    print(
        f"  {ROUNDS} rounds of one pass of the recording ({result['phase_s']:.0f} s) without "
        f"clients, then one with them; CPU in cores of {os.cpu_count()}\n"
        "         without clients                     with clients\n"
        "         frames/s  engine  daphne  machine   frames/s  engine  daphne  machine"
    )
    pairs = zip(result["alone"], result["loaded"], strict=True)
    for number, phases in enumerate(pairs, 1):
        row = "   ".join(
            f"{p.frames_per_s:8,.0f}  {p.engine_cores:6.2f}  {p.web_cores:6.2f}  "
            f"{p.machine_cores:7.2f}"
            for p in phases
        )
        print(f"  {number:5}  {row}")
    print(
        f"  median   {result['alone_fps']:8,.0f}{' ' * 29}{result['loaded_fps']:8,.0f}\n"
        f"  engine frames/s with clients / without: {result['ratio']:.2f} (target >= 0.90)",
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--prepare"]:
        prepare()
    else:
        main()
