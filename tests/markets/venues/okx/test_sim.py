"""The simulated OKX over a real loopback socket: checksums, sequence, ping, faults, and the
real feed behind the connection manager recovering from a corrupted checksum."""

import asyncio
import json
import zlib

import pytest

from markets.connection import Connection
from markets.venues.okx.feed import OkxFeed
from markets.venues.okx.sim import okx_checksum
from tests.markets.simulated import frames, okx


def replay(raw_frames: list[str]) -> OkxFeed:
    feed = OkxFeed("okx", "wss://x", {"BTC-USD": "BTC-USDT", "ETH-USD": "ETH-USDT"})
    for raw in raw_frames:
        feed.handle(raw, 1.0)
    return feed


def test_the_checksum_interleaves_best_first_and_is_signed():
    # Bid 3, ask 4, then the longer bid side alone: "3:1:4:2:1:5".
    unsigned = zlib.crc32(b"3:1:4:2:1:5")
    signed = unsigned - 2**32 if unsigned >= 2**31 else unsigned

    assert okx_checksum([("3", "1"), ("1", "5")], [("4", "2")]) == signed
    assert any(okx_checksum([(str(p), "1")], []) < 0 for p in range(1, 20))


@pytest.mark.asyncio
async def test_every_frame_verifies_in_the_real_feed_and_the_sequence_is_continuous(sim):
    ws = await okx(sim, "BTC-USDT", "ETH-USDT")
    received = await frames(ws, 1.5)
    await ws.close()

    feed = replay(received)
    assert feed.subscribed
    assert feed.stats.checksum_ok > 10
    assert feed.stats.checksum_failed == feed.stats.gaps == feed.stats.malformed == 0
    assert all(book.valid for book in feed.books.values())


@pytest.mark.asyncio
async def test_bad_checksum_fault_sends_exactly_one_wrong_checksum(sim):
    ws = await okx(sim, "BTC-USDT")
    received = await frames(ws, 0.3)
    sim.inject("okx", "bad_checksum")
    received += await frames(ws, 0.6)
    await ws.close()

    feed = replay(received)
    assert feed.stats.checksum_failed == 1
    assert feed.stats.checksum_ok > 1


@pytest.mark.asyncio
async def test_gap_fault_loses_one_update_so_the_sequence_breaks(sim):
    ws = await okx(sim, "BTC-USDT")
    received = await frames(ws, 0.3)
    sim.inject("okx", "gap", symbol="BTC-USD")
    received += await frames(ws, 0.6)
    await ws.close()

    assert replay(received).stats.gaps == 1


@pytest.mark.asyncio
async def test_answers_text_ping_and_refuses_unknown_instruments(sim):
    ws = await okx(sim, "DOGE-USDT")
    await ws.send("ping")
    received = await frames(ws, 0.3)
    await ws.close()

    errors = [json.loads(f) for f in received if f.startswith('{"event":"error"')]
    assert "pong" in received
    assert [e["code"] for e in errors] == ["60018"]


@pytest.mark.asyncio
async def test_the_feed_resyncs_a_corrupted_checksum_over_the_live_connection(sim):
    feed = OkxFeed("okx", sim.urls["okx"], {"BTC-USD": "BTC-USDT"})
    connection = Connection(feed)
    task = asyncio.create_task(connection.run())
    try:
        await until(lambda: connection.state == "live" and feed.books["BTC-USD"].valid)
        sim.inject("okx", "bad_checksum")
        await until(lambda: feed.stats.checksum_failed == 1)
        await until(lambda: feed.books["BTC-USD"].valid)
    finally:
        connection.stop()
        await task

    assert feed.stats.resyncs == 1
    assert connection.connections == 1  # resubscribed on the same socket


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
