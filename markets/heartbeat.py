"""The engine's heartbeat: when it last beat and each venue feed's health, for every process."""

import time

from django.core.cache import cache

ENGINE_HEARTBEAT_KEY = "engine:heartbeat"


def record_engine_heartbeat(extra: dict | None = None) -> None:
    """Called by the engine every few seconds; `extra` carries its feeds' health."""
    cache.set(ENGINE_HEARTBEAT_KEY, {"ts": time.time(), **(extra or {})}, timeout=3600)


def engine_heartbeat() -> dict | None:
    return cache.get(ENGINE_HEARTBEAT_KEY)


def engine_feed_healths() -> list[dict]:
    """Each engine connection's health as the engine's last heartbeat reported it."""
    heartbeat = engine_heartbeat() or {}
    return list(heartbeat.get("feeds", {}).values())
