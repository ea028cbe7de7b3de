"""The second factor of a login: enrolment, the code step before every page, the admin and the
WebSocket, recovery codes, the lock-out, the per-role setting and an administrator's reset."""

import os
import re
import subprocess
import sys
import time
from base64 import b32decode
from io import StringIO
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from arbsite.asgi import application
from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests-1"
CODE_STEP = reverse("second_factor")
ENROL_STEP = reverse("second_factor_enrol")


def member(role: str | None, **fields):
    """A user of `role` who has not logged in yet (no authenticator unless given one)."""
    user = UserFactory(**fields)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """What the authenticator app shows now (or `steps_ahead` 30-second steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    valid = {code(device, steps) for steps in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in valid)


def password_login(client, user) -> None:
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]


def actions(user) -> list[str]:
    return list(
        AuditEvent.objects.filter(user=user).order_by("id").values_list("action", flat=True)
    )


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [TRADER, RISK_MANAGER, ADMINISTRATOR])
def test_a_role_that_needs_a_code_is_led_to_enrol_after_the_password(client, role):
    user = member(role)
    password_login(client, user)

    response = client.get("/", follow=True)

    path, _ = response.redirect_chain[-1]
    assert path.startswith(ENROL_STEP)
    assert "Set up two-factor login" in response.content.decode()


def test_the_enrol_page_shows_the_key_as_a_qr_code_and_as_text_without_inline_script(client):
    user = member(TRADER)
    password_login(client, user)

    html = client.get(ENROL_STEP).content.decode()

    device = TOTPDevice.objects.get(user=user, confirmed=False)
    key = re.search(r'id="otp-key">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert b32decode(key) == device.bin_key
    assert "<svg" in html and "otpauth://totp/" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # the CSP allows no inline script


def test_reloading_the_enrol_page_keeps_the_key_until_it_is_confirmed(client):
    user = member(TRADER)
    password_login(client, user)

    first, second = client.get(ENROL_STEP), client.get(ENROL_STEP)

    assert TOTPDevice.objects.filter(user=user).count() == 1
    key = re.compile(r'id="otp-key">([A-Z2-7 ]+)<')
    assert key.search(first.content.decode())[1] == key.search(second.content.decode())[1]


def test_a_first_code_confirms_the_app_shows_recovery_codes_once_and_opens_the_desk(client):
    user = member(TRADER)
    password_login(client, user)
    client.get(ENROL_STEP)
    device = TOTPDevice.objects.get(user=user)

    response = client.post(ENROL_STEP, {"code": code(device), "next": "/trades/"})

    shown = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    stored = StaticToken.objects.filter(device__user=user).values_list("token", flat=True)
    assert len(shown) == 10 and sorted(shown) == sorted(stored)
    assert 'href="/trades/"' in response.content.decode()
    assert client.get("/").status_code == 200
    again = client.get(ENROL_STEP)
    assert again.status_code == 302 and "<code>" not in again.content.decode()
    assert actions(user) == ["login", "second factor enrolled"]


def test_a_wrong_first_code_enrols_nothing(client):
    user = member(TRADER)
    password_login(client, user)
    client.get(ENROL_STEP)
    device = TOTPDevice.objects.get(user=user)

    response = client.post(ENROL_STEP, {"code": wrong_code(device)})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and not StaticDevice.objects.filter(user=user).exists()
    assert client.get("/")["Location"].startswith(CODE_STEP)


@pytest.mark.parametrize("page", ["/", "/trades/", "/admin/", "/admin/auth/user/", "/audit/"])
def test_an_enrolled_user_gets_no_page_and_no_admin_before_the_code(client, page):
    user = member(ADMINISTRATOR, is_staff=True)
    enrolled(user)
    password_login(client, user)

    response = client.get(page)

    assert response.status_code == 302
    assert response["Location"] == f"{CODE_STEP}?next={page.replace('/', '%2F')}"


def test_the_code_step_shows_no_desk_links_to_a_login_that_owes_its_code(client):
    user = member(ADMINISTRATOR, is_staff=True)
    enrolled(user)
    password_login(client, user)

    html = client.get(CODE_STEP).content.decode()

    assert 'href="/trades/"' not in html and 'href="/admin/"' not in html
    assert f'action="{reverse("logout")}"' in html


def test_an_htmx_request_before_the_code_sends_the_page_to_the_code_step(client):
    user = member(TRADER)
    enrolled(user)
    password_login(client, user)

    response = client.get(
        "/trades/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/trades/"
    )

    assert response["HX-Redirect"] == f"{CODE_STEP}?next=%2Ftrades%2F"


def test_the_right_code_opens_the_page_asked_for_and_is_recorded(client):
    user = member(ADMINISTRATOR, is_staff=True)
    device = enrolled(user)
    password_login(client, user)

    response = client.post(CODE_STEP, {"code": code(device), "next": "/admin/"})

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/").status_code == 200
    assert actions(user) == ["login", "second factor passed"]


def test_a_code_step_never_sends_the_user_off_the_site(client):
    user = member(TRADER)
    device = enrolled(user)
    password_login(client, user)

    response = client.post(CODE_STEP, {"code": code(device), "next": "https://evil.example/"})

    assert response["Location"] == reverse("dashboard")


def test_a_wrong_code_is_refused_recorded_and_opens_nothing(client):
    user = member(TRADER)
    device = enrolled(user)
    password_login(client, user)

    response = client.post(CODE_STEP, {"code": wrong_code(device)})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get("/")["Location"].startswith(CODE_STEP)
    assert actions(user) == ["login", "second factor refused"]


def test_a_code_is_accepted_once(client):
    user = member(TRADER)
    device = enrolled(user)
    used = code(device)
    password_login(client, user)
    client.post(CODE_STEP, {"code": used})
    other = Client()
    password_login(other, user)

    response = other.post(CODE_STEP, {"code": used})

    assert response.status_code == 200
    assert other.get("/")["Location"].startswith(CODE_STEP)


def test_a_recovery_code_logs_in_once_and_is_recorded(client):
    user = member(TRADER)
    enrolled(user)
    recovery = StaticDevice.objects.create(user=user, name="recovery codes")
    recovery.token_set.create(token="abcd2345")
    recovery.token_set.create(token="wxyz6789")
    password_login(client, user)

    client.post(CODE_STEP, {"code": "ABCD 2345"})
    other = Client()
    password_login(other, user)
    reused = other.post(CODE_STEP, {"code": "abcd2345"})

    assert client.get("/").status_code == 200
    assert reused.status_code == 200 and "That code is not right" in reused.content.decode()
    event = AuditEvent.objects.get(action="recovery code used")
    assert (event.user, event.after) == (user, {"recovery codes left": 1})


RECOVERY_PAGE = reverse("recovery_codes")


def logged_in_with_old_codes(client):
    """A Trader past the code step, holding two recovery codes; their authenticator."""
    user = member(TRADER)
    device = enrolled(user)
    recovery = StaticDevice.objects.create(user=user, name="recovery codes")
    recovery.token_set.create(token="abcd2345")
    recovery.token_set.create(token="wxyz6789")
    password_login(client, user)
    client.post(CODE_STEP, {"code": code(device)})
    return user, device


def test_new_recovery_codes_replace_the_old_after_a_code_of_the_app(client):
    user, device = logged_in_with_old_codes(client)
    page = client.get("/").content.decode()
    assert f'href="{RECOVERY_PAGE}"' in page
    assert "You have 2 recovery codes left." in client.get(RECOVERY_PAGE).content.decode()

    response = client.post(RECOVERY_PAGE, {"code": code(device, steps_ahead=1)})

    shown = re.findall(r"<li><code>([a-z0-9]+)</code></li>", response.content.decode())
    assert "Your earlier recovery codes no longer work." in response.content.decode()
    assert len(set(shown)) == 10
    held = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert held == set(shown)  # "abcd2345" and "wxyz6789" are gone
    other = Client()
    password_login(other, user)
    assert other.post(CODE_STEP, {"code": shown[0]})["Location"] == reverse("dashboard")
    old = Client()
    password_login(old, user)
    assert "That code is not right" in old.post(CODE_STEP, {"code": "abcd2345"}).content.decode()
    assert "recovery codes replaced" in actions(user)


def test_a_recovery_code_cannot_replace_the_recovery_codes(client):
    user, _ = logged_in_with_old_codes(client)

    response = client.post(RECOVERY_PAGE, {"code": "abcd2345"})

    assert "recovery codes do not count" in response.content.decode()
    held = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert held == {"abcd2345", "wxyz6789"}
    assert actions(user)[-1] == "second factor refused"


def test_a_user_without_the_app_is_sent_to_enrol_instead(client):
    user = member(VIEWER)  # asked for no code by default
    password_login(client, user)

    response = client.get(RECOVERY_PAGE)

    assert response["Location"].startswith(ENROL_STEP)
    assert 'href="/login/recovery-codes/"' not in client.get("/").content.decode()


def test_five_wrong_codes_lock_the_login_as_five_wrong_passwords_do(client, settings):
    user = member(TRADER)
    device = enrolled(user)
    password_login(client, user)

    statuses = [
        client.post(CODE_STEP, {"code": wrong_code(device)}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    again = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert "_auth_user_id" not in client.session
    assert again.status_code == 429
    assert actions(user).count("second factor refused") == settings.AXES_FAILURE_LIMIT


def test_wrong_codes_keep_counting_across_a_fresh_password_login(client, settings):
    user = member(TRADER)
    device = enrolled(user)
    password_login(client, user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(CODE_STEP, {"code": wrong_code(device)})
    client.post(reverse("logout"))
    password_login(client, user)

    response = client.post(CODE_STEP, {"code": wrong_code(device)})

    assert response.status_code == 429


def test_a_complete_login_clears_the_wrong_codes_before_it(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the device's own slow-down is not under test here
    user = member(TRADER)
    device = enrolled(user)
    password_login(client, user)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(CODE_STEP, {"code": wrong_code(device)})
    client.post(CODE_STEP, {"code": code(device)})
    client.post(reverse("logout"))
    password_login(client, user)

    response = client.post(CODE_STEP, {"code": wrong_code(device)})

    assert response.status_code == 200


def test_a_viewer_is_not_asked_for_a_code_by_default(client):
    password_login(client, member(VIEWER))

    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("required", "role", "asked"),
    [
        (["Viewer"], VIEWER, True),
        (["Viewer"], TRADER, False),
        (["Administrator"], RISK_MANAGER, False),
        (["Administrator"], None, False),
    ],
)
def test_the_roles_asked_for_a_code_come_from_the_setting(client, settings, required, role, asked):
    settings.OTP_REQUIRED_ROLES = required
    password_login(client, member(role))

    response = client.get(reverse("password_change"))

    assert (response.status_code == 302) is asked


def test_a_superuser_is_asked_for_a_code_whatever_the_setting(client, settings):
    settings.OTP_REQUIRED_ROLES = ["Viewer"]
    password_login(client, member(None, is_superuser=True, is_staff=True))

    assert client.get("/admin/")["Location"].startswith(CODE_STEP)


def test_someone_who_enrolled_anyway_is_asked_for_the_code(client):
    user = member(VIEWER)
    enrolled(user)
    password_login(client, user)

    assert client.get("/")["Location"].startswith(CODE_STEP)


def test_an_unknown_role_in_the_setting_stops_the_site():
    env = {"PATH": os.environ["PATH"], "DJANGO_DEBUG": "1", "OTP_REQUIRED_ROLES": "Traders"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "OTP_REQUIRED_ROLES names no such role: Traders" in result.stderr


def socket(client) -> WebsocketCommunicator:
    """The live WebSocket as the browser opens it: the session cookie, not a user in the scope."""
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"origin", b"http://testserver"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, "/ws/live/?topics=desk", headers=headers)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_refuses_a_session_until_it_has_passed_the_code():
    client = Client()
    user = await database_sync_to_async(member)(TRADER)
    device = await database_sync_to_async(enrolled)(user)
    await database_sync_to_async(password_login)(client, user)

    before = socket(client)
    refused = await before.connect()
    await before.disconnect()
    await database_sync_to_async(client.post)(CODE_STEP, {"code": code(device)})
    after = socket(client)
    accepted = await after.connect()
    await after.disconnect()

    assert refused == (False, 4401)
    assert accepted[0] is True


def test_an_administrator_resets_someones_second_factor_from_the_user_list(client, user_with_role):
    administrator = user_with_role(ADMINISTRATOR)
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)
    target = member(TRADER)
    enrolled(target)
    StaticDevice.objects.create(user=target, name="recovery codes")

    response = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [target.pk]},
    )

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=target).exists()
    assert not StaticDevice.objects.filter(user=target).exists()
    event = AuditEvent.objects.get(action="second factor reset")
    assert (event.user, event.object_id, event.before) == (
        administrator,
        str(target.pk),
        {"devices": 2},
    )
    again = Client()
    password_login(again, target)
    assert again.get("/", follow=True).redirect_chain[-1][0].startswith(ENROL_STEP)


@pytest.mark.usefixtures("debug_desk")
def test_the_demo_trader_is_led_to_enrol_and_seed_demo_says_so(client):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    client.post(reverse("login"), {"username": "trader", "password": "demo-desk-2026"})

    response = client.get("/", follow=True)

    assert response.redirect_chain[-1][0].startswith(ENROL_STEP)
    assert "trader, risk, admin log in with a second factor" in out.getvalue()
    assert "viewer with the password alone" in out.getvalue()


def test_a_user_with_role_from_the_fixture_has_passed_the_code_step(client, user_with_role):
    client.force_login(user_with_role(TRADER))

    assert client.get("/").status_code == 200
