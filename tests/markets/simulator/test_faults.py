"""Faults on command, over real loopback sockets: what each does to a venue's clients."""

import asyncio
import json
import time
from datetime import datetime

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from markets.simulator.faults import Faults
from tests.markets.simulated import CONNECT, coinbase, frames, http


@pytest.mark.asyncio
@pytest.mark.parametrize("venue", ["coinbase", "kraken", "binance", "okx", "kucoin"])
async def test_malformed_fault_sends_exactly_one_invalid_frame(sim, venue):
    ws = await CONNECT[venue](sim)
    await frames(ws, 0.2)
    sim.inject(venue, "malformed")
    received = await frames(ws, 0.4)
    await ws.close()

    invalid = 0
    for raw in received:
        try:
            json.loads(raw)
        except ValueError:
            invalid += 1
    assert invalid == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("venue", ["coinbase", "kraken", "binance", "okx", "kucoin"])
async def test_drop_fault_closes_the_venues_connections(sim, venue):
    ws = await CONNECT[venue](sim)
    await frames(ws, 0.2)
    status, _ = await http(f"{sim.urls['control']}/{venue}/drop", method="POST")

    assert status == 200
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(frames(ws, 2.0), 2.5)


@pytest.mark.asyncio
async def test_refuse_fault_rejects_new_connections_then_recovers(sim):
    status, _ = await http(f"{sim.urls['control']}/kraken/refuse?seconds=0.5", method="POST")
    assert status == 200

    with pytest.raises(InvalidStatus) as refused:
        await connect(sim.urls["kraken"])
    assert refused.value.response.status_code == 503
    await asyncio.sleep(0.6)
    ws = await connect(sim.urls["kraken"])
    assert json.loads(await ws.recv())["channel"] == "status"
    await ws.close()


@pytest.mark.asyncio
async def test_refuse_fault_refuses_the_venues_rest_api_too(sim):
    depth = sim.urls["binance_rest"] + "/api/v3/depth?symbol=BTCUSDT"
    sim.inject("binance", "refuse", seconds=0.5)

    refused, _ = await http(depth)
    await asyncio.sleep(0.6)
    served, _ = await http(depth)

    assert (refused, served) == (503, 200)


@pytest.mark.asyncio
async def test_stall_fault_silences_the_venue_then_resumes_in_order(sim):
    ws = await coinbase(sim, "BTC-USD")
    await frames(ws, 0.2)
    sim.inject("coinbase", "stall", seconds=0.6)
    during = await frames(ws, 0.4)
    after = [json.loads(m)["sequence_num"] for m in await frames(ws, 0.6)]
    await ws.close()

    assert during == []
    assert after and after == list(range(after[0], after[0] + len(after)))


async def lateness(ws, seconds: float) -> list[tuple[int, float]]:
    """(sequence number, seconds between Coinbase stamping a frame and its arrival) per frame
    that arrives within `seconds`."""
    late = []
    deadline = time.time() + seconds
    while (left := deadline - time.time()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        stamped = datetime.fromisoformat(message["timestamp"][:26] + "+00:00").timestamp()
        late.append((message["sequence_num"], time.time() - stamped))
    return late


@pytest.mark.asyncio
async def test_slow_fault_delivers_every_frame_its_delay_late_and_in_order(sim):
    ws = await coinbase(sim, "BTC-USD")
    before = await lateness(ws, 0.3)
    sim.inject("coinbase", "slow", seconds=5.0, delay=0.4)
    during = await lateness(ws, 1.0)
    await ws.close()

    # Lower bounds and comparisons only: a loaded machine can delay any frame, never hasten one.
    assert min(late for _, late in during[1:]) >= 0.35  # the first may have left before
    assert max(late for _, late in before) < min(late for _, late in during[1:])
    numbers = [number for number, _ in before + during]
    assert numbers == list(range(len(numbers)))


@pytest.mark.asyncio
async def test_a_one_shot_fault_the_venue_has_not_is_refused(sim):
    with pytest.raises(ValueError, match="bad_checksum does not apply to coinbase"):
        sim.inject("coinbase", "bad_checksum")


@pytest.mark.asyncio
async def test_a_fault_that_is_not_time_boxed_has_no_clock():
    with pytest.raises(ValueError, match="drop is not one of"):
        Faults().start("drop", None, None)
