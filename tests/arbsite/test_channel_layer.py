"""The Redis channel layer's bundled group send: what `group_send` of each message would deliver,
in the same order, but in one message per member, over a real Redis; and the engine's pump
sending it from a thread of its own."""

import asyncio
import os
import sys
import threading
import uuid

import pytest
import pytest_asyncio
from channels.layers import get_channel_layer

from arbsite.channel_layer import BUNDLE, BlockingRedisChannelLayer
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


async def bundle(layer, channel: str) -> list:
    """The `n` of each message in the next bundle `channel` receives."""
    message = await asyncio.wait_for(layer.receive(channel), 5)
    assert message["type"] == BUNDLE
    return [m["n"] for m in message["messages"]]


async def test_each_member_receives_the_messages_of_its_groups_in_one_bundle_in_order(layer):
    web, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("desk", web)
    await layer.group_add("desk", other)
    await layer.group_add("health", web)

    layer.send_bundled(
        [
            ("desk", {"type": "live.notice", "n": 1}),
            ("health", {"type": "live.notice", "n": 2}),
            ("nobody", {"type": "live.notice", "n": 0}),
            ("desk", {"type": "live.notice", "n": 3}),
        ]
    )
    layer.send_bundled([("health", {"type": "live.notice", "n": 4})])

    assert await bundle(layer, web) == [1, 2, 3]
    assert await bundle(layer, other) == [1, 3]
    assert await bundle(layer, web) == [4]  # the next bundle: nothing of the first is left


async def test_a_channel_at_capacity_drops_a_bundle_as_group_send_drops_a_message(layer):
    web = await layer.new_channel()
    await layer.group_add("desk", web)

    for n in range(4):  # capacity 3: the fourth bundle does not fit
        layer.send_bundled([("desk", {"type": "live.notice", "n": n})] * 2)
    await layer.group_send("desk", {"type": "live.notice", "n": 9})  # full: dropped as well

    assert [await bundle(layer, web) for _ in range(3)] == [[0, 0], [1, 1], [2, 2]]
    layer.send_bundled([("desk", {"type": "live.notice", "n": 5})])
    assert await bundle(layer, web) == [5]


async def test_a_member_past_the_group_expiry_hears_nothing(layer):
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("desk", stale)
    await layer.group_add("desk", fresh)
    connection = layer.connection(layer.consistent_hash("desk"))
    await connection.zadd(layer._group_key("desk"), {stale: 0})  # added in 1970

    layer.send_bundled([("desk", {"type": "live.notice", "n": 1})])

    assert await bundle(layer, fresh) == [1]
    assert await connection.zrange(layer._group_key("desk"), 0, -1) == [fresh.encode()]


@pytest.fixture
def switch_interval():
    """The interpreter's switch interval as it was before the test (a running pump sets its own)."""
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def senders() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("live-notices")]


async def test_the_pump_sends_a_batch_as_one_bundle_from_a_thread_of_its_own_and_stops_it(
    switch_interval,
):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(notices.group(notices.HEALTH), channel)
    stop, pump = asyncio.Event(), notices.Pump(interval_s=600)
    running = asyncio.create_task(pump.run(stop))

    pump.mark(notices.HEALTH)
    heard = await asyncio.wait_for(layer.receive(channel), 10)
    during, switch = senders(), sys.getswitchinterval()
    pump.mark(notices.HEALTH)  # within the interval: sent as the pump stops
    stop.set()
    await running
    last = await asyncio.wait_for(layer.receive(channel), 10)

    assert heard["type"] == last["type"] == BUNDLE
    assert [m["kind"] for m in heard["messages"] + last["messages"]] == [notices.HEALTH] * 2
    assert during == ["live-notices_0"] and senders() == []
    assert switch == notices.SWITCH_S  # the threads' waits for the interpreter lock are short
    await layer.group_discard(notices.group(notices.HEALTH), channel)
