"""A login lasts a working day at most, and ends after an idle spell without a request."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from arbsite.roles import VIEWER
from arbsite.sessions import LAST_SEEN, STAMP_EVERY_S

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(VIEWER))
    assert client.get(reverse("trades")).status_code == 200  # the login's first request
    return client


def last_request_ago(client, seconds: float) -> None:
    session = client.session
    session[LAST_SEEN] = time.time() - seconds
    session.save()


def test_a_session_idle_past_the_timeout_is_sent_to_log_in(viewer, settings):
    last_request_ago(viewer, settings.SESSION_IDLE_TIMEOUT_S + 5)

    response = viewer.get(reverse("trades"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('trades')}"
    assert viewer.get(reverse("trades")).status_code == 302  # logged out, not only redirected


def test_a_session_used_within_the_timeout_stays_logged_in(viewer, settings):
    last_request_ago(viewer, settings.SESSION_IDLE_TIMEOUT_S - 5)

    assert viewer.get(reverse("trades")).status_code == 200


def test_a_login_ends_session_cookie_age_after_its_first_request_however_busy(viewer, settings):
    first_expiry = viewer.session.get_expiry_date()
    last_request_ago(viewer, STAMP_EVERY_S + 1)  # so the next request saves the session again

    response = viewer.get(reverse("trades"))

    assert viewer.session.get_expiry_date() == first_expiry
    assert first_expiry - timezone.now() <= timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert int(response.cookies["sessionid"]["max-age"]) <= settings.SESSION_COOKIE_AGE


def test_session_age_and_idle_timeout_default_to_ten_hours_and_half_an_hour_or_the_env():
    code = (
        "from arbsite import settings as s; print(s.SESSION_COOKIE_AGE, s.SESSION_IDLE_TIMEOUT_S)"
    )
    base = {"PATH": os.environ["PATH"], "DJANGO_DEBUG": "1"}

    def read(**env) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert read() == ["36000", "1800"]
    assert read(SESSION_COOKIE_AGE="28800", SESSION_IDLE_TIMEOUT_S="600") == ["28800", "600"]
