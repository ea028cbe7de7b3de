"""The live WebSocket: who may connect, a burst of pages connecting at once, a push's cost."""

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

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
    received = await asyncio.gather(*(comm.receive_from(timeout=10) for comm in comms))

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
