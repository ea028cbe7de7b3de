"""One member of each live group per web process: a notice crosses the channel layer once for all
the process's pages, each page hears it, and a failing page or layer stops no one else."""

import asyncio
import os
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from arbsite import fanout, live
from arbsite.asgi import application
from arbsite.channel_layer import BlockingRedisChannelLayer
from arbsite.consumers import LiveConsumer
from arbsite.roles import TRADER, VIEWER
from markets import notices
from tests.factories import OpportunityFactory

pytestmark = pytest.mark.asyncio
OPPORTUNITIES = notices.group(notices.OPPORTUNITIES)


@pytest.fixture
def in_memory_layer(settings):
    """A layer whose groups and deliveries a test can read (CI runs the pages over Redis)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield
    live._RENDERER.submit(connections.close_all).result()


def communicator(user, topics: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/live/?topics={topics}", headers=[(b"origin", b"http://testserver")]
    )
    comm.scope["user"] = user
    return comm


@pytest.mark.django_db(transaction=True)
async def test_a_notice_to_five_pages_is_one_delivery_one_render_and_five_pushes(
    user_with_role, in_memory_layer, monkeypatch
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comms = [communicator(user, "opportunities") for _ in range(5)]
    for comm in comms:
        assert (await comm.connect())[0]
    layer = get_channel_layer()
    deliveries, renders, assembled = [], [], []
    send, render, push_of = layer.send, live.render, LiveConsumer.push_of

    async def counted_send(channel: str, message: dict) -> None:
        deliveries.append(channel)
        await send(channel, message)

    async def counted_push_of(consumer, heard: list[dict]) -> str:
        assembled.append(consumer)
        return await push_of(consumer, heard)

    monkeypatch.setattr(layer, "send", counted_send)
    monkeypatch.setattr(live, "render", lambda *a: renders.append(a[0].topic) or render(*a))
    monkeypatch.setattr(LiveConsumer, "push_of", counted_push_of)

    await layer.group_send(OPPORTUNITIES, notices.notice(notices.OPPORTUNITIES))
    received = [await comm.receive_from(timeout=5) for comm in comms]

    assert len(layer.groups[OPPORTUNITIES]) == 1  # the process's member, not one per page
    assert deliveries == [fanout.fanout().channel]
    assert renders == ["opportunities"]
    assert len(assembled) == 1  # the five pages follow the same: one text for all
    assert len(set(received)) == 1 and 'id="open-opportunities"' in received[0]
    for comm in comms:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_pages_that_follow_different_things_or_see_different_controls_get_their_own_push(
    user_with_role, in_memory_layer
):
    viewer = await database_sync_to_async(user_with_role)(VIEWER)
    trader = await database_sync_to_async(user_with_role)(TRADER)
    pages = {
        "viewer": communicator(viewer, "opportunities"),
        "viewer too": communicator(viewer, "opportunities"),
        "trader": communicator(trader, "opportunities"),  # may execute: its own controls
        "viewer with the status bar": communicator(viewer, "opportunities,desk"),
    }
    for comm in pages.values():
        assert (await comm.connect())[0]
    await database_sync_to_async(OpportunityFactory)()

    await get_channel_layer().group_send(OPPORTUNITIES, notices.notice(notices.OPPORTUNITIES))
    got = {name: await comm.receive_from(timeout=5) for name, comm in pages.items()}

    assert got["viewer"] == got["viewer too"]
    assert "Execute…" in got["trader"] and "Execute…" not in got["viewer"]
    assert 'id="desk-status"' in got["viewer with the status bar"]
    assert 'id="desk-status"' not in got["viewer"]
    for comm in pages.values():
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_last_page_to_leave_takes_the_process_out_of_its_groups(
    user_with_role, in_memory_layer
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    first, second = communicator(user, "opportunities"), communicator(user, "opportunities")
    assert (await first.connect())[0] and (await second.connect())[0]

    await first.disconnect()
    still_in = set(get_channel_layer().groups.get(OPPORTUNITIES, {}))
    member = fanout.fanout().channel
    await second.disconnect()

    assert member is not None and still_in == {member}
    assert OPPORTUNITIES not in get_channel_layer().groups
    assert fanout.fanout().channel is None  # nor does it keep a channel or a receiving task


class Page:
    def __init__(self, fails: bool = False) -> None:
        self.heard: list[dict] = []
        self.calls = 0  # one per batch it heard
        self.fails = fails

    async def hear(self, heard: list[dict]) -> None:
        if self.fails:
            raise ConnectionError("the socket closed as the push went out")
        self.heard.extend(heard)
        self.calls += 1


async def heard(page: Page, count: int = 1) -> list[dict]:
    for _ in range(500):
        if len(page.heard) >= count:
            break
        await asyncio.sleep(0.01)
    return page.heard


async def test_a_page_whose_push_fails_stops_none_of_the_others():
    hub = fanout.Fanout(InMemoryChannelLayer())
    before, closing, after = Page(), Page(fails=True), Page()
    for page in (before, closing, after):
        await hub.join(OPPORTUNITIES, page)
    notice = notices.notice(notices.OPPORTUNITIES)

    count = await hub.deliver([notice])

    assert count == 2
    assert before.heard == after.heard == [notice]
    await asyncio.gather(*(hub.leave(OPPORTUNITIES, p) for p in (before, closing, after)))


async def test_a_notice_reaches_only_the_pages_of_its_group():
    layer = InMemoryChannelLayer()
    hub = fanout.Fanout(layer)
    desk, health = Page(), Page()
    await hub.join(OPPORTUNITIES, desk)
    await hub.join(notices.group(notices.HEALTH), health)

    await layer.group_send(notices.group(notices.HEALTH), notices.notice(notices.HEALTH))

    assert [n["kind"] for n in await heard(health)] == [notices.HEALTH]
    assert desk.heard == []
    await hub.leave(OPPORTUNITIES, desk)
    await hub.leave(notices.group(notices.HEALTH), health)


class FlakyLayer(InMemoryChannelLayer):
    """Fails its first receive, as a Redis that restarted (and forgot every group) would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1
        self.adds: list[str] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.adds.append(group)
        await super().group_add(group, channel)

    async def receive(self, channel: str) -> dict:
        if self.failures:
            self.failures -= 1
            await self.flush()
            raise ConnectionError("Redis went away")
        return await super().receive(channel)


async def test_after_the_layer_fails_the_process_joins_its_groups_again_and_hears(monkeypatch):
    monkeypatch.setattr(fanout, "RETRY_S", 0.01)
    layer = FlakyLayer()
    hub = fanout.Fanout(layer)
    page = Page()
    await hub.join(OPPORTUNITIES, page)
    for _ in range(500):
        if len(layer.adds) == 2:
            break
        await asyncio.sleep(0.01)

    await layer.group_send(OPPORTUNITIES, notices.notice(notices.OPPORTUNITIES))

    assert layer.adds == [OPPORTUNITIES, OPPORTUNITIES]
    assert [n["kind"] for n in await heard(page)] == [notices.OPPORTUNITIES]
    await hub.leave(OPPORTUNITIES, page)


async def test_notices_sent_together_reach_a_page_in_one_call_with_one_of_each_change():
    layer = InMemoryChannelLayer()
    hub = fanout.Fanout(layer)
    desk, health = Page(), Page()
    health_group = notices.group(notices.HEALTH)
    for group in (OPPORTUNITIES, health_group, notices.group(notices.ALERT, notices.FEEDS)):
        await hub.join(group, desk)
    await hub.join(health_group, health)
    first, last = notices.notice(notices.OPPORTUNITIES), notices.notice(notices.OPPORTUNITIES)
    down = notices.announcement(notices.FEEDS, "Kraken down", notices.ERROR)
    up = notices.announcement(notices.FEEDS, "Kraken back", notices.SUCCESS)
    beat = notices.notice(notices.HEALTH)

    for notice in (first, down, beat, last, up):
        await layer.group_send(fanout.group_of(notice), notice)

    got = await heard(desk, 4)
    assert desk.calls == 1
    # The first of two notices of one change is dropped (the push is the fragment as it is now);
    # both announcements stay, each in its place.
    assert got == [down, beat, last, up]
    assert health.heard == [beat] and health.calls == 1
    for group in list(hub.pages):
        for page in (desk, health):
            await hub.leave(group, page)


@pytest.mark.django_db(transaction=True)
async def test_a_fragment_two_notices_re_render_comes_once_in_their_one_message(
    user_with_role, in_memory_layer
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "desk,opportunities")
    assert (await comm.connect())[0]
    layer = get_channel_layer()

    await layer.group_send(OPPORTUNITIES, notices.notice(notices.OPPORTUNITIES))
    await layer.group_send(notices.group(notices.HEALTH), notices.notice(notices.HEALTH))

    message = await comm.receive_from(timeout=5)
    assert await comm.receive_nothing(timeout=0.3)
    # Both notices re-render the status bar (it counts the open opportunities and shows the
    # feeds): it comes once, with the open opportunities.
    assert message.count('id="desk-status"') == 1
    assert 'id="open-opportunities"' in message
    await comm.disconnect()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis channel layer")
async def test_a_bundle_over_redis_reaches_each_page_as_its_notices_in_one_call(monkeypatch):
    # A bundle is its publisher's whole batch: not held back to collect more.
    monkeypatch.setattr(fanout, "COLLECT_S", 60.0)
    monkeypatch.setattr(fanout, "COLLECT_MAX_S", 120.0)
    layer = BlockingRedisChannelLayer(
        hosts=[{"address": os.environ["REDIS_URL"]}], prefix=f"test-{uuid.uuid4().hex[:8]}"
    )
    hub = fanout.Fanout(layer)
    desk, health = Page(), Page()
    health_group = notices.group(notices.HEALTH)
    await hub.join(OPPORTUNITIES, desk)
    await hub.join(health_group, desk)
    await hub.join(health_group, health)
    published = notices.notice(notices.OPPORTUNITIES)["published"]
    opened = notices.notice(notices.OPPORTUNITIES, published=published)
    beat = notices.notice(notices.HEALTH, published=published)
    try:
        layer.send_bundled([(OPPORTUNITIES, opened), (health_group, beat)])

        assert await heard(desk, 2) == [opened, beat] and desk.calls == 1
        assert await heard(health) == [beat] and health.calls == 1
    finally:
        for group in list(hub.pages):
            for page in (desk, health):
                await hub.leave(group, page)
        await layer.flush()
        await layer.close_pools()
