"""The live WebSocket refuses anonymous users and users without the desk permission."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from arbsite.asgi import application
from arbsite.roles import VIEWER


def communicator(user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://testserver")]
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
