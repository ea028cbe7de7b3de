"""One member of each live group per web process: a notice crosses the channel layer once per
process, not once per page, and is handed to the process's pages in memory.

With a channel per page, a notice to a group of 200 pages was 200 messages: the publisher (the
engine's loop) serialised each and Redis stored each, and the web process fetched them one round
trip at a time, so pushes queued behind each other for hundreds of milliseconds.
"""

import asyncio
import contextlib
import logging
from typing import Protocol

from channels.layers import get_channel_layer

from markets import notices

log = logging.getLogger(__name__)

# channels_redis drops a group's member that has not been added again for a day (group_expiry):
# the process's one member renews its groups well before.
RENEW_S = 3600.0
RETRY_S = 1.0  # after the layer failed to deliver, before receiving again


class Page(Protocol):
    async def hear(self, notice: dict) -> None: ...


def group_of(notice: dict) -> str:
    """The group a notice was sent to: every publisher sends a notice to its own kind's group."""
    return notices.group(notice["kind"], notice["key"])


class Fanout:
    """This process's member of the live groups its pages follow, on one event loop.

    Joins a group in the layer when its first page joins and leaves it with its last page;
    holds a channel and its receiving task only while some page follows something.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.pages: dict[str, set[Page]] = {}
        self.channel: str | None = None
        self._tasks: list[asyncio.Task] = []
        # Joins and leaves one at a time: a group is added once and discarded once.
        self._lock = asyncio.Lock()

    async def join(self, group: str, page: Page) -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self._tasks = [
                    asyncio.ensure_future(self._receive(self.channel)),
                    asyncio.ensure_future(self._renew()),
                ]
            pages = self.pages.get(group)
            if pages is None:
                await self.layer.group_add(group, self.channel)
                pages = self.pages[group] = set()
            pages.add(page)

    async def leave(self, group: str, page: Page) -> None:
        async with self._lock:
            pages = self.pages.get(group)
            if pages is None or page not in pages:
                return
            pages.discard(page)
            if pages:
                return
            del self.pages[group]
            try:
                await self.layer.group_discard(group, self.channel)
            finally:
                if not self.pages:
                    await self._stop()

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self.channel = [], None

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                notice = await self.layer.receive(channel)
            except Exception:
                log.exception("live pushes: receiving from the channel layer failed")
                await asyncio.sleep(RETRY_S)
                await self._rejoin()  # a Redis that restarted has forgotten the groups
                continue
            await self.deliver(notice)

    async def deliver(self, notice: dict) -> int:
        """Hand `notice` to every page of its group, one after another (in the order notices
        came, and each render shared by all); return how many pages heard it."""
        heard = 0
        for page in list(self.pages.get(group_of(notice), ())):
            try:
                await page.hear(notice)
                heard += 1
            except Exception:
                # A page closing as its push went out is told by its disconnect; the rest hear.
                log.debug("live push to a page failed", exc_info=True)
        return heard

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            await self._rejoin()

    async def _rejoin(self) -> None:
        async with self._lock:
            for group in list(self.pages):
                try:
                    await self.layer.group_add(group, self.channel)
                except Exception:
                    log.exception("live pushes: joining %s again failed", group)


_fanouts: dict[tuple[asyncio.AbstractEventLoop, int], Fanout] = {}


def fanout() -> Fanout:
    """The running loop's fanout over the configured channel layer."""
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    ident = (loop, id(layer))
    found = _fanouts.get(ident)
    if found is None or found.layer is not layer:
        found = _fanouts[ident] = Fanout(layer)
        for stale in [key for key in _fanouts if key[0].is_closed()]:
            del _fanouts[stale]
    return found
