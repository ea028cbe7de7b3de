"""The engine: one asyncio loop holding the venue feeds and reporting a heartbeat."""

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async

from arbsite.health import record_engine_heartbeat

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 5.0


class Engine:
    """Runs until `stop()`; small step methods so tests can drive it directly."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    def health(self) -> dict:
        return {"feeds": {}}

    async def beat(self) -> None:
        await sync_to_async(record_engine_heartbeat)(self.health())

    async def run(self) -> None:
        log.info("engine started")
        while not self.stopping.is_set():
            await self.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), HEARTBEAT_EVERY_S)
        log.info("engine stopped")
