"""The engine: one asyncio loop holding the venue connections, the detector and their outputs.

Per frame only the feed, the book and the detector run (trading.engine.pipeline); opportunity rows,
published books, heartbeats and pushes leave the hot path through sets and batches flushed by
small periodic tasks.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async

from markets import notices
from markets.bookcache import publish_book
from markets.connection import Connection
from markets.heartbeat import record_engine_heartbeat
from markets.metrics import APPLY_LATENCY
from markets.recording import Recorder
from markets.venues import VenueConfig
from trading.engine.pipeline import Limits, Pipeline
from trading.lifecycle import OpportunityEvent

log = logging.getLogger(__name__)

Notify = Callable[[str, str], None]  # (kind, key): markets.notices kinds, e.g. "market"/symbol
OnEvents = Callable[[list[OpportunityEvent]], Awaitable[None]]


def _no_notify(kind: str, key: str = "") -> None:
    return None


class Engine:
    """Runs until `stop()`; each periodic step is a method that says whether it found work."""

    def __init__(
        self,
        venues: list[VenueConfig],
        *,
        limits: Limits | None = None,
        record_path: str | None = None,
        notify: Notify = _no_notify,
        on_events: OnEvents | None = None,
        load_limits: Callable[[], Limits | None] | None = None,
        on_beat: Callable[[dict], None] | None = None,
        connection_options: dict | None = None,
        flush_every_s: float = 0.25,
        heartbeat_every_s: float = 2.0,
    ) -> None:
        self.pipeline = Pipeline(venues, limits)
        self.recorder = Recorder(record_path) if record_path else None
        self.notify = notify
        self.on_events = on_events
        self.load_limits = load_limits
        self.on_beat = on_beat
        self.flush_every_s = flush_every_s
        self.heartbeat_every_s = heartbeat_every_s
        self.stopping = asyncio.Event()
        self.pending: list[OpportunityEvent] = []
        self.dirty_books: set[tuple[str, str]] = set()
        self.connections = [
            Connection(
                feed,
                on_frame=self.recorder,
                on_books_changed=self.on_books_changed,
                **(connection_options or {}),
            )
            for feed in self.pipeline.feeds.values()
        ]

    # -- the hot path --------------------------------------------------------------------------

    def on_books_changed(self, venue: str, markets: list[str]) -> None:
        events = self.pipeline.detect(markets, time.time(), venue)
        if events:
            self.pending += events
        for market in markets:
            self.dirty_books.add((venue, market))
        received = self.pipeline.books[markets[0]][venue].received_ts
        if received is not None:
            APPLY_LATENCY.observe(time.time() - received)

    # -- off the hot path ----------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        for connection in self.connections:
            connection.stop()

    def health(self) -> dict:
        return {"feeds": {c.feed.venue: c.health() for c in self.connections}}

    async def flush(self) -> bool:
        """Publish changed books, then hand the pending lifecycle events to the subscriber.

        In that order: a paper leg executed from this flush must see the book it was priced on.
        """
        published = await self.publish_books()
        handed = await self.flush_opportunities()
        return published or handed

    async def flush_opportunities(self) -> bool:
        """Hand the lifecycle events gathered since the last call to the subscriber, in order."""
        events, self.pending = self.pending, []
        if events and self.on_events is not None:
            await self.on_events(events)
        return bool(events)

    async def publish_books(self) -> bool:
        """Publish the top levels of every book that changed since the last call."""
        dirty, self.dirty_books = self.dirty_books, set()
        if not dirty:
            return False
        tops = [self.pipeline.books[market][venue].top(10) for venue, market in dirty]
        await sync_to_async(lambda: [publish_book(top) for top in tops])()
        for market in {market for _, market in dirty}:
            self.notify(notices.MARKET, market)
        return True

    async def sweep(self) -> bool:
        """Close crosses whose books went stale without a frame; reload the risk limits."""
        if self.load_limits is not None:
            limits = await sync_to_async(self.load_limits)()
            if limits is not None:
                self.pipeline.limits = limits
        events = self.pipeline.sweep(time.time())
        self.pending += events
        return bool(events)

    async def beat(self) -> None:
        health = self.health()
        await sync_to_async(record_engine_heartbeat)(health)
        if self.on_beat is not None:
            await sync_to_async(self.on_beat)(health)
        self.notify(notices.HEALTH, "")
        self.notify(notices.RISK_STATUS, "")

    async def _every(self, seconds: float, step: Callable) -> None:
        while not self.stopping.is_set():
            try:
                await step()
            except Exception:  # a failed flush must not stop the engine; the next one retries
                log.exception("engine step %s failed", step.__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), seconds)

    async def run(self) -> None:
        log.info("engine started: %s", ", ".join(c.feed.url for c in self.connections))
        tasks = [asyncio.create_task(c.run()) for c in self.connections]
        tasks += [
            asyncio.create_task(self._every(self.flush_every_s, self.flush)),
            asyncio.create_task(self._every(1.0, self.sweep)),
            asyncio.create_task(self._every(self.heartbeat_every_s, self.beat)),
        ]
        try:
            await self.stopping.wait()
        finally:
            self.stop()
            await asyncio.wait(tasks[: len(self.connections)], timeout=5)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.pending += self.pipeline.tracker.close_all(time.time(), "engine stopped")
            await self.flush_opportunities()
            if self.recorder is not None:
                self.recorder.close()
            log.info("engine stopped")
