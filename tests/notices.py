"""Hearing live notices in tests: a channel on the real channel layer joined to a kind's group."""

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from markets import notices


class Heard:
    """Joins the group of `kind` (and `key`) now; `notices()` returns what reached it since."""

    def __init__(self, kind: str, key: str = "") -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(notices.group(kind, key), self.channel)

    def notices(self, wait_s: float = 0.2) -> list[dict]:
        """Every notice received, waiting `wait_s` for each next one."""
        return async_to_sync(self.drain)(wait_s)

    async def drain(self, wait_s: float = 0.2) -> list[dict]:
        received = []
        while True:
            try:
                received.append(await asyncio.wait_for(self.layer.receive(self.channel), wait_s))
            except TimeoutError:
                return received
