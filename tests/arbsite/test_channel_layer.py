"""The Redis channel layer's batched group send: what `group_send` of each message would deliver,
in the same order, over a real Redis; and the engine's pump sending it from a thread of its own."""

import asyncio
import os
import threading
import uuid

import pytest
import pytest_asyncio
from channels.layers import get_channel_layer

from arbsite.channel_layer import BlockingRedisChannelLayer
from markets import notices

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis channel layer"),
]


@pytest_asyncio.fixture
async def layer():
    made = BlockingRedisChannelLayer(
        hosts=[{"address": os.environ["REDIS_URL"]}],
        prefix=f"test-{uuid.uuid4().hex[:8]}",
        capacity=3,
    )
    yield made
    await made.flush()
    await made.close_pools()


async def received(layer, channel: str, count: int) -> list:
    return [(await layer.receive(channel))["n"] for _ in range(count)]


async def test_a_batch_reaches_every_member_of_each_group_in_order(layer):
    web, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("desk", web)
    await layer.group_add("desk", other)
    await layer.group_add("health", web)

    await layer.group_send_many(
        [
            ("desk", {"type": "live.notice", "n": 1}),
            ("health", {"type": "live.notice", "n": 2}),
            ("nobody", {"type": "live.notice", "n": 0}),
            ("desk", {"type": "live.notice", "n": 3}),
        ]
    )

    assert await received(layer, web, 3) == [1, 2, 3]
    assert await received(layer, other, 2) == [1, 3]


async def test_a_channel_at_capacity_drops_what_does_not_fit_as_group_send_does(layer):
    web = await layer.new_channel()
    await layer.group_add("desk", web)

    await layer.group_send_many([("desk", {"type": "live.notice", "n": n}) for n in range(5)])
    await layer.group_send("desk", {"type": "live.notice", "n": 9})  # full: dropped as well

    assert await received(layer, web, 3) == [0, 1, 2]
    await layer.group_send_many([("desk", {"type": "live.notice", "n": 5})])
    assert await received(layer, web, 1) == [5]


async def test_a_member_past_the_group_expiry_hears_nothing(layer):
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("desk", stale)
    await layer.group_add("desk", fresh)
    connection = layer.connection(layer.consistent_hash("desk"))
    await connection.zadd(layer._group_key("desk"), {stale: 0})  # added in 1970

    await layer.group_send_many([("desk", {"type": "live.notice", "n": 1})])

    assert await received(layer, fresh, 1) == [1]
    assert await connection.zrange(layer._group_key("desk"), 0, -1) == [fresh.encode()]


def senders() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "live-notices"]


async def test_the_pump_sends_from_a_thread_of_its_own_and_stops_it_with_the_engine():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(notices.group(notices.HEALTH), channel)
    stop, pump = asyncio.Event(), notices.Pump(interval_s=600)
    running = asyncio.create_task(pump.run(stop))

    pump.mark(notices.HEALTH)
    heard = await asyncio.wait_for(layer.receive(channel), 10)
    during = senders()
    pump.mark(notices.HEALTH)  # within the interval: sent as the pump stops
    stop.set()
    await running
    last = await asyncio.wait_for(layer.receive(channel), 10)

    assert heard["kind"] == last["kind"] == notices.HEALTH
    assert during == ["live-notices"] and senders() == []
    await layer.group_discard(notices.group(notices.HEALTH), channel)
