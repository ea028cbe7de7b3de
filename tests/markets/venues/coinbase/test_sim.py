"""The simulated Coinbase over a real loopback socket, checked with a plain websocket client."""

import asyncio
import itertools
import json
import time

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.markets.simulated import FAST, coinbase, frames


@pytest.mark.asyncio
async def test_coinbase_sequence_is_contiguous_from_zero_and_snapshot_comes_first(sim):
    ws = await coinbase(sim, "BTC-USD", "ETH-USD")
    await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats"}))
    messages = [json.loads(m) for m in await frames(ws, 1.0)]
    await ws.close()

    assert [m["sequence_num"] for m in messages] == list(range(len(messages)))
    assert messages[0]["channel"] == "subscriptions"
    assert messages[-1]["channel"] != "subscriptions"
    acks = [m["events"][0]["subscriptions"] for m in messages if m["channel"] == "subscriptions"]
    assert acks[-1] == {"level2": ["BTC-USD", "ETH-USD"], "heartbeats": ["heartbeats"]}
    for product in ("BTC-USD", "ETH-USD"):
        kinds = [
            e["type"]
            for m in messages
            if m["channel"] == "l2_data"
            for e in m["events"]
            if e["product_id"] == product
        ]
        assert kinds[0] == "snapshot"
        assert set(kinds[1:]) == {"update"}
    counters = [
        m["events"][0]["heartbeat_counter"] for m in messages if m["channel"] == "heartbeats"
    ]
    assert counters and counters == list(range(counters[0], counters[0] + len(counters)))
    assert all("client_id" not in m for m in messages)


@pytest.mark.asyncio
async def test_coinbase_gap_fault_skips_one_sequence_number(sim):
    ws = await coinbase(sim, "BTC-USD")
    received = await frames(ws, 0.3)
    sim.inject("coinbase", "gap")
    received += await frames(ws, 0.6)
    await ws.close()

    numbers = [json.loads(m)["sequence_num"] for m in received]
    steps = [b - a for a, b in itertools.pairwise(numbers)]
    assert sorted(steps)[-1] == 2
    assert steps.count(2) == 1


@pytest.mark.asyncio
async def test_coinbase_closes_a_connection_that_never_subscribes(sim):
    ws = await connect(sim.urls["coinbase"])
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), FAST.subscribe_timeout + 1)


@pytest.mark.asyncio
async def test_coinbase_names_unknown_products_and_serves_the_known_ones(sim):
    ws = await coinbase(sim, "BTC-USD", "DOGE-EUR")
    messages = [json.loads(m) for m in await frames(ws, 0.3)]
    await ws.close()

    assert messages[0] == {"type": "error", "message": "unknown product ids ['DOGE-EUR']"}
    books = [m for m in messages if m.get("channel") == "l2_data"]
    assert books and {e["product_id"] for m in books for e in m["events"]} == {"BTC-USD"}


@pytest.mark.asyncio
async def test_coinbase_server_time_is_public_and_reads_the_venues_own_clock(sim):
    sim.venues["coinbase"].clock_skew = -600.0

    url = f"{sim.urls['coinbase_rest']}/api/v3/brokerage/time"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        status, answer = response.status, await response.json()

    assert status == 200
    assert set(answer) == {"iso", "epochSeconds", "epochMillis"}
    assert abs(int(answer["epochMillis"]) / 1000 - (time.time() - 600)) < 5
    assert int(answer["epochSeconds"]) == int(answer["epochMillis"]) // 1000
    assert answer["iso"].endswith("Z")
