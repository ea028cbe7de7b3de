"""One member of each live group per web process: a notice crosses the channel layer once per
process, not once per page, and is handed to the process's pages in memory.

With a channel per page, a notice to a group of 200 pages was 200 messages: the publisher (the
engine's loop) serialised each and Redis stored each, and the web process fetched them one round
trip at a time, so pushes queued behind each other for hundreds of milliseconds.

The notices a publisher sends together (the engine's pump sends every marked change at once) are
handed to each page together, so a page gets one message for all of them, not one per fragment:
with 200 pages, the sends, not the renders, were most of a push's cost, and a page's sixth
fragment waited for the five before it to reach all 200.
"""

import asyncio
import contextlib
import logging
from typing import Protocol

from channels.layers import get_channel_layer

from arbsite.channel_layer import BUNDLE, unbundled
from markets import notices

log = logging.getLogger(__name__)

# channels_redis drops a group's member that has not been added again for a day (group_expiry):
# the process's one member renews its groups well before.
RENEW_S = 3600.0
RETRY_S = 1.0  # after the layer failed to deliver, before receiving again
# After a single notice, those that follow it within COLLECT_S of each other (up to COLLECT_MAX_S
# in all) are delivered with it: a publisher's notices sent one by one (a worker's, on commit)
# arrive one receive (a Redis round trip) apart. A bundle is its publisher's whole batch.
COLLECT_S = 0.001
COLLECT_MAX_S = 0.005


class Page(Protocol):
    async def hear(self, heard: list[dict]) -> None: ...


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
        self._pending: list[dict] = []  # received, not yet delivered
        self._whole = False  # the last received was a bundle: nothing of its batch is to come
        self._arrived = asyncio.Event()
        # Joins and leaves one at a time: a group is added once and discarded once.
        self._lock = asyncio.Lock()

    async def join(self, group: str, page: Page) -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self._tasks = [
                    asyncio.ensure_future(self._receive(self.channel)),
                    asyncio.ensure_future(self._deliver_received()),
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
        self._tasks, self.channel, self._pending = [], None, []

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                notice = await self.layer.receive(channel)
            except Exception:
                log.exception("live pushes: receiving from the channel layer failed")
                await asyncio.sleep(RETRY_S)
                await self._rejoin()  # a Redis that restarted has forgotten the groups
                continue
            self._pending += unbundled(notice)
            self._whole = notice["type"] == BUNDLE  # the engine's batch, in one message
            self._arrived.set()

    async def _deliver_received(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            # The rest of the publisher's batch: until a quiet COLLECT_S, at most COLLECT_MAX_S.
            until, seen = loop.time() + COLLECT_MAX_S, 0
            while not self._whole and len(self._pending) > seen and loop.time() < until:
                seen = len(self._pending)
                await asyncio.sleep(COLLECT_S)
            self._arrived.clear()
            batch, self._pending = self._pending, []
            await self.deliver(batch)

    async def deliver(self, batch: list[dict]) -> int:
        """Hand each page the notices of `batch` sent to its groups, in one call per page (in
        the order they came, each render shared by all); return how many pages heard them.

        Of several notices of one change (kind and key) only the last is kept: each push is the
        whole fragment as it is now. Announcements are each their own event and all kept.
        """
        latest = {}
        for index, notice in enumerate(batch):
            same = index if notice["kind"] == notices.ALERT else (notice["kind"], notice["key"])
            latest.pop(same, None)  # re-inserted: in the order of the last of each change
            latest[same] = notice
        by_page: dict[Page, list[dict]] = {}
        for notice in latest.values():
            for page in self.pages.get(group_of(notice), ()):
                by_page.setdefault(page, []).append(notice)
        heard = 0
        for page, its in by_page.items():
            try:
                await page.hear(its)
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
