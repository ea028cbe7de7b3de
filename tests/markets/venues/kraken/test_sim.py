"""The simulated Kraken over a real loopback socket: checksums, depths, acks and faults."""

import json
import time

import aiohttp
import pytest
from websockets.asyncio.client import connect

from markets.venues.kraken.sim import kraken_checksum
from tests.markets.simulated import frames, kraken, kraken_books
from tests.markets.test_book import DOC_ASKS, DOC_BIDS  # the documentation example book


def test_the_checksum_is_krakens_own_on_its_documentation_example():
    assert kraken_checksum(DOC_ASKS, DOC_BIDS) == 3310070434


@pytest.mark.asyncio
async def test_kraken_every_checksum_verifies_and_depth_is_respected(sim):
    depths = {"BTC/USD": 10, "ETH/USD": 25}
    ws = await kraken(sim, depths)
    received = await frames(ws, 1.5)
    for _ in range(20):  # a loaded machine delivers fewer frames a second: wait for enough
        if kraken_books(received, depths)[1] > 10:
            break
        received += await frames(ws, 0.5)
    await ws.close()

    books, good, bad = kraken_books(received, depths)
    assert bad == 0
    assert good > 10
    for symbol, depth in depths.items():
        assert len(books[symbol].sides["bids"]) == depth
        assert len(books[symbol].sides["asks"]) == depth
    updates = [json.loads(m) for m in received if '"type":"update"' in m]
    assert all("timestamp" in u["data"][0] for u in updates)


@pytest.mark.asyncio
async def test_kraken_bad_checksum_fault_sends_exactly_one_wrong_checksum(sim):
    depths = {"BTC/USD": 10}
    ws = await kraken(sim, depths)
    received = await frames(ws, 0.3)
    sim.inject("kraken", "bad_checksum")
    received += await frames(ws, 0.8)
    await ws.close()

    assert kraken_books(received, depths)[2] == 1


@pytest.mark.asyncio
async def test_kraken_gap_fault_loses_one_update_so_checksums_stop_verifying(sim):
    depths = {"BTC/USD": 10}
    ws = await kraken(sim, depths)
    received = await frames(ws, 0.3)
    sim.inject("kraken", "gap", symbol="BTC-USD")
    received += await frames(ws, 0.8)
    await ws.close()

    _, good, bad = kraken_books(received, depths)
    assert good > 1 and bad > 0


@pytest.mark.asyncio
async def test_kraken_acks_per_symbol_rejects_unknown_pairs_and_answers_ping(sim):
    ws = await connect(sim.urls["kraken"])
    status = json.loads(await ws.recv())
    params = {"channel": "book", "symbol": ["BTC/USD", "XBT/USD"], "depth": 10}
    await ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": 4}))
    await ws.send(json.dumps({"method": "ping", "req_id": 9}))
    replies = [json.loads(m) for m in await frames(ws, 0.3) if '"method"' in m]
    await ws.close()

    assert status["channel"] == "status"
    assert status["data"][0]["system"] == "online"
    acks = [r for r in replies if r["method"] == "subscribe"]
    assert [(a["success"], a["req_id"]) for a in acks] == [(True, 4), (False, 4)]
    assert acks[1]["symbol"] == "XBT/USD"
    assert {"method": "pong", "req_id": 9}.items() <= replies[-1].items()


@pytest.mark.asyncio
async def test_kraken_resubscribe_after_unsubscribe_gives_a_fresh_verifying_snapshot(sim):
    depths = {"BTC/USD": 25}
    ws = await kraken(sim, depths)
    await frames(ws, 0.3)
    params = {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}
    await ws.send(json.dumps({"method": "unsubscribe", "params": params}))
    await ws.send(json.dumps({"method": "subscribe", "params": params}))
    received = await frames(ws, 0.5)
    await ws.close()

    unsubscribed = [m for m in received if '"method": "unsubscribe"' in m]
    assert json.loads(unsubscribed[0])["success"] is True
    snapshot_at = next(i for i, m in enumerate(received) if '"type":"snapshot"' in m)
    _, good, bad = kraken_books(received[snapshot_at:], depths)
    assert (good > 1, bad) == (True, 0)


@pytest.mark.asyncio
async def test_kraken_public_time_reads_the_venues_own_clock_in_its_own_shape(sim):
    sim.venues["kraken"].clock_skew = 3600.0

    url = f"{sim.urls['kraken_rest']}/0/public/Time"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        answer = await response.json()

    assert answer["error"] == []
    unixtime = answer["result"]["unixtime"]
    assert abs(unixtime - (time.time() + 3600)) < 5
    assert answer["result"]["rfc1123"] == time.strftime(
        f"%a, {time.gmtime(unixtime).tm_mday:2d} %b %y %H:%M:%S +0000", time.gmtime(unixtime)
    )
