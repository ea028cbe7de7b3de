"""/healthz reports each part and answers 503 when a required part is down; details for staff."""

import time

import pytest

from arbsite.roles import VIEWER
from markets.heartbeat import ENGINE_HEARTBEAT_KEY, record_engine_heartbeat

UNREACHABLE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


@pytest.fixture
def staff(client, user_with_role):
    user = user_with_role(VIEWER)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_healthz_without_login_says_only_up_or_down_per_part(client):
    record_engine_heartbeat({"feeds": {"kraken": {"state": "live", "error": "secret detail"}}})

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": {"ok": True},
        "cache": {"ok": True},
        "channel_layer": {"ok": True},
        "engine": {"ok": True},
    }


@pytest.mark.django_db
def test_healthz_without_login_shows_no_exception_text_of_a_part_down(client, settings):
    settings.CACHES = UNREACHABLE_CACHE

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"] == {"ok": False}


@pytest.mark.django_db
def test_healthz_reports_every_part_ok_with_its_details_to_staff(staff):
    record_engine_heartbeat({"feeds": {"kraken": {"state": "live"}}})

    response = staff.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["cache"]["ok"] and body["channel_layer"]["ok"]
    assert 0 <= body["engine"]["heartbeat_age_s"] < 5
    assert body["engine"]["feeds"]["kraken"]["state"] == "live"


@pytest.mark.django_db
def test_healthz_reports_an_old_engine_heartbeat_as_down(staff):
    from django.core.cache import cache

    cache.set(ENGINE_HEARTBEAT_KEY, {"ts": time.time() - 600})

    body = staff.get("/healthz").json()

    assert body["engine"]["ok"] is False
    assert body["engine"]["heartbeat_age_s"] >= 600


@pytest.mark.django_db
def test_healthz_answers_503_when_the_cache_is_unreachable(staff, settings):
    settings.CACHES = UNREACHABLE_CACHE

    response = staff.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"]["ok"] is False
    assert "Error" in response.json()["cache"]["error"]
