"""The beat schedule (CELERY_BEAT_SCHEDULE) run in-process, for the embedded default: there no
beat process runs, and the tasks run eagerly in this process anyway."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from arbsite.celery import app

log = logging.getLogger(__name__)


async def run_schedule(stop: asyncio.Event) -> None:
    """Run each scheduled task once a period, the first a period after the start, until `stop`."""
    entries = settings.CELERY_BEAT_SCHEDULE.values()
    await asyncio.gather(*(_every(e["task"], float(e["schedule"]), stop) for e in entries))


def run_task(name: str) -> bool:
    """Run the task `name` here and now; False (logged) if it raised."""
    result = app.tasks[name].apply()
    if result.failed():
        log.error("scheduled task %s failed: %r", name, result.result)
    return not result.failed()


async def _every(name: str, period: float, stop: asyncio.Event) -> None:
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
            return
        except TimeoutError:
            await sync_to_async(run_task)(name)
