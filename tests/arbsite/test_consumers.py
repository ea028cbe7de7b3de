"""The live WebSocket: who may connect, a burst of pages connecting at once, a push's cost."""

import asyncio
import os
import re

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from hypothesis import given, settings
from hypothesis import strategies as st

from arbsite import live
from arbsite.asgi import application
from arbsite.roles import TRADER, VIEWER
from markets import notices


def communicator(user, topics: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/live/?topics={topics}", headers=[(b"origin", b"http://testserver")]
    )
    comm.scope["user"] = user
    return comm


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_anonymous_websocket_is_refused():
    comm = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://testserver")]
    )

    connected, code = await comm.connect()

    assert connected is False
    assert code == 4401
    await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_from_a_foreign_origin_is_refused(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://evil.example")]
    )
    comm.scope["user"] = user

    connected, _ = await comm.connect()

    assert connected is False
    await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("role", "accepted"), [(VIEWER, True), (None, False)])
async def test_websocket_needs_the_desk_permission(user_with_role, role, accepted):
    user = await database_sync_to_async(user_with_role)(role)
    comm = communicator(user)

    connected, _ = await comm.connect()

    assert connected is accepted
    await comm.disconnect()


async def pushes(comm, marker: str, most: int = 5) -> str:
    """The first push `comm` receives that holds `marker` (a notice may also push the status
    bar first), or the last one received."""
    html = ""
    for _ in range(most):
        html = await comm.receive_from(timeout=10)
        if marker in html:
            break
    return html


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis channel layer")
async def test_two_hundred_pages_opening_at_once_all_join_their_groups(user_with_role):
    user = await database_sync_to_async(user_with_role)(TRADER)
    topics = "desk,health,opportunities,spreads:BTC-USD,spreads:ETH-USD"
    comms = [communicator(user, topics) for _ in range(200)]

    results = await asyncio.gather(*(comm.connect(timeout=20) for comm in comms))
    await get_channel_layer().group_send(
        notices.group(notices.OPPORTUNITIES), notices.notice(notices.OPPORTUNITIES)
    )
    received = await asyncio.gather(*(pushes(comm, 'id="open-opportunities"') for comm in comms))

    assert [connected for connected, _ in results] == [True] * 200
    assert all('id="open-opportunities"' in html for html in received)
    await asyncio.gather(*(comm.disconnect() for comm in comms))
    await sync_to_async(connections.close_all)()  # the consumers' thread keeps its connection


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_push_skips_the_database_cleanup_channels_runs_per_message(
    user_with_role, monkeypatch
):
    import channels.consumer

    user = await database_sync_to_async(user_with_role)(TRADER)
    comm = communicator(user, "opportunities")
    assert (await comm.connect())[0]
    cleanups = []
    cleanup = channels.consumer.aclose_old_connections

    async def counted() -> None:
        cleanups.append(1)
        await cleanup()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)

    await get_channel_layer().group_send(
        notices.group(notices.OPPORTUNITIES), notices.notice(notices.OPPORTUNITIES)
    )

    assert 'id="open-opportunities"' in await comm.receive_from(timeout=5)
    assert cleanups == []  # a trip to the database thread per page per push, saved
    await comm.disconnect()


@pytest.fixture
def in_memory_layer(settings):
    """The consumer's group bookkeeping on a layer whose groups a test can read: the same
    consumer code runs over Redis in CI, where membership is not readable this way."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


# A Viewer sees every category of announcement: their page joins each group.
EVERY_ANNOUNCEMENT = {notices.group(notices.ALERT, category) for category in live.ANNOUNCED_TO}


def memberships() -> dict[str, set[str]]:
    """Every group of the in-memory channel layer and the channels in it."""
    return {group: set(members) for group, members in get_channel_layer().groups.items()}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "bad",
    [
        "spreads:" + "X" * 92,  # a group name of 100 characters or more
        "spreads:BTC/USD",  # a character no group name holds
        "spreads:BTC%00USD",
        "spreads:%FF%FE",  # not UTF-8
        "desk:BTC-USD",  # a key on a topic that takes none
        "spreads",  # no key on a topic that needs one
        "x" * 5000,
    ],
)
async def test_a_bad_topic_is_ignored_and_the_socket_keeps_its_good_ones(
    user_with_role, bad, in_memory_layer
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    before = memberships()
    comm = communicator(user, f"health,{bad}")

    connected, _ = await comm.connect()
    joined = {g for g, members in memberships().items() if members - before.get(g, set())}
    await comm.disconnect()

    assert connected is True
    assert joined == {"live.health", *EVERY_ANNOUNCEMENT}
    assert memberships() == before


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_connect_that_fails_after_joining_leaves_every_group_it_joined(
    user_with_role, monkeypatch, in_memory_layer
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    layer = get_channel_layer()
    before = memberships()
    add = layer.group_add

    async def failing_add(group: str, channel: str) -> None:
        if group == "live.opportunities":
            raise ConnectionError("the layer went away")
        await add(group, channel)

    monkeypatch.setattr(layer, "group_add", failing_add)
    comm = communicator(user, "health,desk,opportunities")

    with pytest.raises(ConnectionError):
        await comm.connect()

    assert memberships() == before


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_query_string_that_is_not_utf8_is_read_and_its_bad_topic_ignored(
    user_with_role, in_memory_layer
):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    before = memberships()
    comm = communicator(user)
    comm.scope["query_string"] = b"topics=health,spreads:\xff\xfe"

    connected, _ = await comm.connect()
    joined = {g for g, members in memberships().items() if members - before.get(g, set())}
    await comm.disconnect()

    assert connected is True
    assert joined == {"live.health", *EVERY_ANNOUNCEMENT}


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([notices.MARKET, notices.OPPORTUNITIES]), key=st.text(max_size=300))
def test_every_notice_group_name_is_one_the_channel_layer_accepts(kind, key):
    name = notices.group(kind, key)

    assert len(name) < 100
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", name)


def test_two_long_keys_that_share_a_beginning_get_two_groups():
    first, second = "A" * 120 + "1", "A" * 120 + "2"

    assert notices.group(notices.MARKET, first) != notices.group(notices.MARKET, second)
