"""/healthz reports each part and answers 503 when a required part is down."""

import time

import pytest

from markets.heartbeat import ENGINE_HEARTBEAT_KEY, record_engine_heartbeat


@pytest.mark.django_db
def test_healthz_reports_every_part_ok_without_login(client):
    record_engine_heartbeat({"feeds": {"kraken": {"state": "live"}}})

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["cache"]["ok"] and body["channel_layer"]["ok"]
    assert 0 <= body["engine"]["heartbeat_age_s"] < 5
    assert body["engine"]["feeds"]["kraken"]["state"] == "live"


@pytest.mark.django_db
def test_healthz_reports_an_old_engine_heartbeat_as_down(client):
    from django.core.cache import cache

    cache.set(ENGINE_HEARTBEAT_KEY, {"ts": time.time() - 600})

    body = client.get("/healthz").json()

    assert body["engine"]["ok"] is False
    assert body["engine"]["heartbeat_age_s"] >= 600


@pytest.mark.django_db
def test_healthz_answers_503_when_the_cache_is_unreachable(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["cache"]["ok"] is False
    assert "Error" in response.json()["cache"]["error"]
