"""Live pushes under load: 200 logged-in WebSocket clients on one `run_desk` (daphne) process.

Reports push latency (publish stamp in the fragment -> client receive) and the engine's
frames/s from its heartbeat, with and without the clients.
"""

import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("LIVE_BENCH_CLIENTS", "200"))
SECONDS = float(os.environ.get("LIVE_BENCH_SECONDS", "20"))
TOPICS = "desk,health,opportunities,spreads:BTC-USD,spreads:ETH-USD"
PUBLISHED = re.compile(r'data-published="([0-9.]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip


def _session_cookie(env: dict) -> str:
    """A session for the demo trader, written straight into the desk's database."""
    script = (
        "from django.contrib.auth import get_user_model as U;"
        "from django.contrib.sessions.backends.db import SessionStore as S;"
        "u=U().objects.get(username='trader');s=S();"
        "s['_auth_user_id']=str(u.pk);"
        "s['_auth_user_backend']='django.contrib.auth.backends.ModelBackend';"
        "s['_auth_user_hash']=u.get_session_auth_hash();s.create();print(s.session_key)"
    )
    return _manage(env, "shell", "--no-imports", "-c", script).strip().splitlines()[-1]


def _frames(base: str) -> tuple[float, int]:
    """(heartbeat time, frames received over every feed) from /healthz."""
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        engine = json.loads(response.read())["engine"]
    heartbeat_ts = time.time() - (engine.get("heartbeat_age_s") or 0)
    return heartbeat_ts, sum(f.get("frames", 0) for f in engine.get("feeds", {}).values())


async def _frame_rate(base: str, seconds: float) -> float:
    t0, f0 = await asyncio.to_thread(_frames, base)
    await asyncio.sleep(seconds)
    t1, f1 = await asyncio.to_thread(_frames, base)
    return (f1 - f0) / (t1 - t0) if t1 > t0 else float("nan")


async def _client(url: str, origin: str, cookie: str, stop: asyncio.Event, out: list) -> None:
    headers = {"Cookie": f"sessionid={cookie}"}
    async with connect(url, origin=origin, additional_headers=headers, max_queue=None) as ws:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            received = time.time()
            for stamp in PUBLISHED.findall(message):
                out.append(received - float(stamp))


async def _measure(base: str, port: int, cookie: str) -> dict:
    await asyncio.sleep(5)  # let the feeds connect and the books fill
    alone = await _frame_rate(base, SECONDS / 2)
    stop = asyncio.Event()
    latencies: list[float] = []
    url = f"ws://127.0.0.1:{port}/ws/live/?topics={TOPICS}"
    origin = f"http://127.0.0.1:{port}"
    clients = [
        asyncio.create_task(_client(url, origin, cookie, stop, latencies)) for _ in range(CLIENTS)
    ]
    await asyncio.sleep(2)
    connected = sum(not c.done() for c in clients)
    loaded = await _frame_rate(base, SECONDS)
    stop.set()
    await asyncio.gather(*clients, return_exceptions=True)
    return {"alone": alone, "loaded": loaded, "latencies": latencies, "connected": connected}


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
        env |= {"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DJANGO_DEBUG": "1"}
        _manage(env, "migrate", "--no-input", "-v0")
        _manage(env, "createcachetable")
        _manage(env, "seed_demo")
        cookie = _session_cookie(env)
        port, sim_port = _free_port(), _free_port()
        args = ["run_desk", "--port", str(port), "--sim-port", str(sim_port)]
        desk = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(base)
            result = asyncio.run(_measure(base, port, cookie))
        finally:
            desk.send_signal(signal.SIGINT)
            desk.wait(timeout=20)
    _report(result)
    return result


def _wait_for(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("run_desk did not start")


def _report(result: dict) -> None:
    ms = sorted(x * 1000 for x in result["latencies"])
    print(f"live_load: {result['connected']}/{CLIENTS} WebSocket clients on one daphne process")
    if ms:
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        rate = len(ms) / SECONDS / max(result["connected"], 1)
        print(f"  push latency (publish -> receive): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        print(f"  fragments received: {len(ms)} ({rate:.1f}/s per client)")
    else:
        print("  no pushes received")
    print(f"  engine frames/s: {result['alone']:.0f} without clients, {result['loaded']:.0f} with")


if __name__ == "__main__":
    main()
