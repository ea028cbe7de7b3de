"""Hearing live notices in tests: a channel on the real channel layer joined to a kind's group.

The channel lives on an event loop of its own (in a thread), because the Redis layer binds a
channel's receive buffer to the loop that first read it, while the code under test publishes
from whatever loop `async_to_sync` gives it. Use the `heard` fixture, which closes them.
"""

import asyncio
import threading
from collections.abc import Coroutine

from channels.layers import get_channel_layer

from arbsite.channel_layer import unbundled
from markets import notices


class Heard:
    """Joins the group of `kind` (and `key`) now; `notices()` returns what reached it since."""

    def __init__(self, kind: str, key: str = "") -> None:
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.channel = self._run(self.layer.new_channel())
        self._run(self.layer.group_add(notices.group(kind, key), self.channel))

    def notices(self, wait_s: float = 1.0) -> list[dict]:
        """Every notice received, waiting `wait_s` for each next one."""
        return self._run(self._drain(wait_s))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def _run(self, job: Coroutine):
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout=30)

    async def _drain(self, wait_s: float) -> list[dict]:
        received = []
        while True:
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), wait_s)
                received += unbundled(message)
            except TimeoutError:
                return received
