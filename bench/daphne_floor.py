"""The floor under the live-load benchmark's push latency: daphne alone, no Django.

A bare ASGI application on daphne sends one message of a live push's size to each of 200
WebSockets every half second, as the engine's pump does, and the same lean clients as the live
load's read them on the same CPUs (all but the engine's). Nothing is rendered, nothing crosses
Redis: what is measured is daphne's (Twisted's, autobahn's) send of one message to 200 sockets
and the clients' read of it, the part of a push that no code of this project can shorten.

`python -m bench.daphne_floor` (about 30 s); LIVE_BENCH_CLIENTS and LIVE_BENCH_OPENING as for
the live load.
"""

import asyncio
import os
import re
import statistics
import subprocess
import sys
import time

from bench import lean_ws
from bench.live_load import (
    CLIENTS,
    OPENING,
    ROOT,
    _cpu_s,
    _engine_core,
    _free_port,
    reference_ms,
)

MESSAGE_BYTES = 5_500  # a dashboard push of a batch (two spread tables, opportunities, status)
EVERY_S = 0.5  # the engine's pump interval
MEASURE_S = 15.0
STAMP = re.compile(rb'data-published="([0-9.]+)"')

_pages: list = []
_sending: list[asyncio.Task] = []


async def _send_every_interval() -> None:
    padding = "x" * (MESSAGE_BYTES - 40)
    while True:
        await asyncio.sleep(EVERY_S)
        message = {"type": "websocket.send", "text": f'{padding} data-published="{time.time()}"'}
        for send in list(_pages):
            await send(message)


async def app(scope, receive, send) -> None:
    """Accept every WebSocket and keep its `send` for the pushes; any HTTP request gets 200."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    _pages.append(send)
    if not _sending:
        _sending.append(asyncio.ensure_future(_send_every_interval()))
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        _pages.remove(send)


async def _measure(port: int, web: int) -> dict:
    latencies: list[float] = []
    stamps: set[bytes] = set()
    counting = False

    def heard(message: bytes, received: float) -> None:
        if counting:
            for stamp in STAMP.findall(message):
                latencies.append(received - float(stamp))
                stamps.add(stamp)

    opening = asyncio.Semaphore(OPENING)

    async def open_one():
        async with opening:
            return await lean_ws.connect(f"ws://127.0.0.1:{port}/", {}, heard)

    sockets = await asyncio.gather(*(open_one() for _ in range(CLIENTS)))
    await asyncio.sleep(3.0)
    counting = True
    web_before, mine_before = _cpu_s(web), time.process_time()
    await asyncio.sleep(MEASURE_S)
    counting = False
    web_s, mine_s = _cpu_s(web) - web_before, time.process_time() - mine_before
    for socket in sockets:
        socket.close()
    await asyncio.gather(*(socket.closed for socket in sockets))
    ms = sorted(x * 1000 for x in latencies)
    return {
        "messages": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[int(len(ms) * 0.95)],
        "p99_ms": ms[int(len(ms) * 0.99)],
        "web_ms_per_batch": web_s * 1000 / len(stamps),
        "clients_ms_per_batch": mine_s * 1000 / len(stamps),
    }


def main() -> dict:
    print("## The floor: daphne alone, a bare ASGI app (bench/daphne_floor.py)", flush=True)
    reference = reference_ms()
    port = _free_port()
    _, everyone = _engine_core()  # daphne and the clients off the engine's CPU, as in the load
    args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    web = subprocess.Popen(
        [*args, "bench.daphne_floor:app"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(3.0)
        result = asyncio.run(_measure(port, web.pid))
    finally:
        web.terminate()
        web.wait(timeout=20)
        os.sched_setaffinity(0, everyone)
    print(
        f"  {CLIENTS} clients, one {MESSAGE_BYTES:,}-byte message each every {EVERY_S} s; "
        f"a fixed Python loop {reference:.0f} ms\n"
        f"  latency (send -> receive): p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} "
        f"ms, p99 {result['p99_ms']:.0f} ms over {result['messages']:,} messages\n"
        f"  CPU per batch: daphne {result['web_ms_per_batch']:.1f} ms, the clients "
        f"{result['clients_ms_per_batch']:.1f} ms",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
