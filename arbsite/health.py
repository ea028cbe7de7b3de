"""The state /healthz reports: database, cache, channel layer and engine heartbeat."""

import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from markets.heartbeat import engine_heartbeat


def _check(probe) -> dict:
    try:
        probe()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("value written was not read back")
    cache.delete(key)


def _channel_layer() -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(channel, {"type": "healthz"})
    if async_to_sync(layer.receive)(channel).get("type") != "healthz":
        raise RuntimeError("message sent was not received")


def health_report() -> tuple[bool, dict]:
    """Return (all required parts up, report). The engine is reported but not required."""
    report = {
        "database": _check(_database),
        "cache": _check(_cache),
        "channel_layer": _check(_channel_layer),
    }
    ok = all(part["ok"] for part in report.values())
    heartbeat = engine_heartbeat() if report["cache"]["ok"] else None
    if heartbeat is None:
        report["engine"] = {"ok": False, "heartbeat_age_s": None}
    else:
        age = round(time.time() - heartbeat["ts"], 3)
        report["engine"] = {
            "ok": age <= settings.ENGINE_HEARTBEAT_MAX_AGE_S,
            "heartbeat_age_s": age,
            "feeds": heartbeat.get("feeds", {}),
        }
    return ok, report


def public_report(report: dict) -> dict:
    """Only up or down per part, for whoever asks: feeds, errors and ages are for staff."""
    return {part: {"ok": state["ok"]} for part, state in report.items()}
