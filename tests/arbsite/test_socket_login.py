"""An open live socket holds to its login: logged out, idle too long, past its age, the user
deactivated or their role taken away, the next push closes it (4401) instead of reaching it."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from arbsite import consumers, twofactor
from arbsite.asgi import application
from arbsite.roles import RISK_MANAGER, TRADER, VIEWER
from arbsite.sessions import LAST_SEEN
from markets import notices

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
PUSH = notices.group(notices.OPPORTUNITIES)


@pytest.fixture(autouse=True)
def every_push_rechecks(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.SOCKET_RECHECK_S = 0.0


def logged_in(user_with_role, role: str = VIEWER):
    """A browser's client logged in as a new user of `role` (no second factor asked)."""
    user = user_with_role(role)
    client = Client()
    client.force_login(user)
    client.get("/")  # the login's first request stamps the session, as in a browser
    return user, client


async def socket(client, topics: str = "opportunities") -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(
        application,
        f"/ws/live/?topics={topics}",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    assert (await comm.connect())[0]
    return comm


async def push_reaches(comm) -> bool:
    """Push a change; True if the page got its fragment, False if the socket was closed."""
    await get_channel_layer().group_send(PUSH, notices.notice(notices.OPPORTUNITIES))
    output = await comm.receive_output(timeout=5)
    if output["type"] == "websocket.close":
        assert output["code"] == consumers.LOGIN_ENDED
        return False
    return 'id="open-opportunities"' in output["text"]


async def test_a_socket_keeps_hearing_while_its_login_holds(user_with_role):
    _, client = await database_sync_to_async(logged_in)(user_with_role)
    comm = await socket(client)

    assert await push_reaches(comm)
    assert await push_reaches(comm)
    await comm.disconnect()


async def test_logging_out_in_another_tab_closes_the_open_socket(user_with_role):
    _, client = await database_sync_to_async(logged_in)(user_with_role)
    comm = await socket(client)
    assert await push_reaches(comm)

    await database_sync_to_async(client.post)(reverse("logout"))

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_a_login_idle_longer_than_the_timeout_closes_the_socket(user_with_role, settings):
    _, client = await database_sync_to_async(logged_in)(user_with_role)
    comm = await socket(client)

    def idle_since_long_ago() -> None:
        session = client.session
        session[LAST_SEEN] = time.time() - settings.SESSION_IDLE_TIMEOUT_S - 1
        session.save()

    await database_sync_to_async(idle_since_long_ago)()

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_a_session_past_its_age_closes_the_socket(user_with_role):
    _, client = await database_sync_to_async(logged_in)(user_with_role)
    comm = await socket(client)
    key = client.cookies["sessionid"].value

    await database_sync_to_async(Session.objects.filter(session_key=key).update)(
        expire_date="2000-01-01T00:00:00Z"
    )

    assert not await push_reaches(comm)
    await comm.disconnect()


@pytest.mark.parametrize("taken_away", ["role", "account"])
async def test_a_user_whose_role_or_account_is_taken_away_is_cut_off(user_with_role, taken_away):
    user, client = await database_sync_to_async(logged_in)(user_with_role, TRADER)
    comm = await socket(client)
    assert await push_reaches(comm)

    def take_away() -> None:
        if taken_away == "role":
            user.groups.remove(Group.objects.get(name=TRADER))
        else:
            user.is_active = False
            user.save()

    await database_sync_to_async(take_away)()

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_a_password_change_closes_the_socket_of_a_login_made_with_the_old_one(
    user_with_role,
):
    user, client = await database_sync_to_async(logged_in)(user_with_role)
    comm = await socket(client)
    assert await push_reaches(comm)

    def reset_password() -> None:  # e.g. an administrator resets a stolen account
        user.set_password("a-brand-new-password-9x")
        user.save()

    await database_sync_to_async(reset_password)()

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_a_second_factor_reset_closes_the_socket_of_the_login_it_verified(user_with_role):
    user, client = await database_sync_to_async(logged_in)(user_with_role, TRADER)
    comm = await socket(client)
    assert await push_reaches(comm)

    await database_sync_to_async(twofactor.reset)(user)

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_losing_the_permission_behind_a_followed_topic_closes_the_socket(user_with_role):
    user, client = await database_sync_to_async(logged_in)(user_with_role, None)

    def permissions(*codenames: str) -> list[Permission]:
        return list(Permission.objects.filter(codename__in=codenames))

    desk_and_trades = await database_sync_to_async(permissions)("view_desk", "view_trade")
    await database_sync_to_async(user.user_permissions.add)(*desk_and_trades)
    comm = await socket(client, "opportunities,trades")
    assert await push_reaches(comm)

    view_trade = await database_sync_to_async(permissions)("view_trade")
    await database_sync_to_async(user.user_permissions.remove)(*view_trade)

    assert not await push_reaches(comm)  # view_desk alone would not have followed trades
    await comm.disconnect()


async def test_losing_staff_status_closes_a_socket_that_follows_a_staff_only_topic(
    user_with_role,
):
    def staff_risk_manager(role: str):
        user = user_with_role(role)
        user.is_staff = True  # as seed_demo and the admin make a Risk Manager
        user.save()
        return user

    user, client = await database_sync_to_async(logged_in)(staff_risk_manager, RISK_MANAGER)
    comm = await socket(client, "opportunities,risk-status")
    assert await push_reaches(comm)

    def demote() -> None:  # the role's permissions kept, the admin taken away
        user.is_staff = False
        user.save()

    await database_sync_to_async(demote)()

    assert not await push_reaches(comm)
    await comm.disconnect()


async def test_a_page_whose_recheck_is_slow_holds_up_no_other_page_and_keeps_its_order(
    user_with_role, monkeypatch
):
    _, first_client = await database_sync_to_async(logged_in)(user_with_role)
    _, other_client = await database_sync_to_async(logged_in)(user_with_role)
    slow, other = await socket(first_client), await socket(other_client)
    slow_key = first_client.cookies["sessionid"].value
    released, allowed = asyncio.Event(), consumers.live.login_still_allowed

    async def held_for_one(session_key, user_id, perms) -> bool:
        if session_key == slow_key:
            await released.wait()  # its trip to the database takes as long as the test says
        return await allowed(session_key, user_id, perms)

    monkeypatch.setattr(consumers.live, "login_still_allowed", held_for_one)
    layer = get_channel_layer()
    first, second = notices.notice(notices.OPPORTUNITIES), notices.notice(notices.OPPORTUNITIES)
    await layer.group_send(PUSH, first)
    heard_meanwhile = await other.receive_from(timeout=5)
    await layer.group_send(PUSH, second)  # while the slow page's check is still under way
    heard_meanwhile += await other.receive_from(timeout=5)
    assert await slow.receive_nothing(timeout=0.2)
    released.set()
    heard_late = [await slow.receive_from(timeout=5) for _ in range(2)]

    assert heard_meanwhile.count('id="open-opportunities"') == 2
    stamps = [html.split('data-published="', 1)[1].split('"', 1)[0] for html in heard_late]
    assert stamps == [f"{first['published']:.6f}", f"{second['published']:.6f}"]
    await slow.disconnect()
    await other.disconnect()
