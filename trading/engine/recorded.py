"""A recording played into the live engine at full speed, in place of the venue sockets.

For load tests (`run_arbitrage --replay`): everything after the feeds (detector, opportunity
rows, published books, pushes, heartbeats) is the engine's own.
"""

import asyncio
import logging
import math
import time
from collections.abc import Callable

from markets.connection import Connection
from markets.recording import apply_record, read_records
from markets.venues.feed import Feed

log = logging.getLogger(__name__)

TURN = 20  # frames the venue with the fewest in the recording hands over per turn of the loop
Frame = tuple[str | None, str, str]  # kind (None: received, "rest": a snapshot), text, URL


class RecordedConnection(Connection):
    """A venue connection whose frames come from a recording, as fast as the loop takes them.

    At the end of the recording the feed is reset and the frames start again, as after a
    reconnect. Resync actions are dropped: the recording holds what followed them.
    """

    def __init__(
        self,
        feed: Feed,
        frames: list[Frame],
        *,
        on_books_changed: Callable[[str, list[str]], None],
        batch: int = TURN,
    ) -> None:
        super().__init__(feed, on_books_changed=on_books_changed)
        # The recording's venue times are as old as the recording: all of that is clock, none
        # of it lag (and the feed resets, relearning it, at each pass).
        feed.max_clock_offset = math.inf
        self.frames = frames
        self.batch = batch  # frames between two yields to the loop's other tasks
        self.passes = 0

    async def run(self) -> None:
        self.state = "live"
        try:
            while not self._stopping.is_set():
                await self._play()
                self.passes += 1
                self.feed.reset("the recording starts again")
                await asyncio.sleep(0)
        finally:
            self.feed.reset("stopped")

    async def _play(self) -> None:
        feed, on_books, venue = self.feed, self.on_books_changed, self.feed.venue
        for number, (kind, text, url) in enumerate(self.frames, 1):
            ts = time.time()
            changed = apply_record(feed, kind, text, url, ts)
            if changed:
                on_books(venue, list(changed))
            if number % self.batch == 0:
                self.last_frame_ts = ts
                await asyncio.sleep(0)
                if self._stopping.is_set():
                    return


def recorded_connections(
    path: str, feeds: dict[str, Feed], on_books_changed: Callable[[str, list[str]], None]
) -> list[RecordedConnection]:
    """Read `path` into memory and return one connection per feed that has frames in it."""
    frames: dict[str, list[Frame]] = {venue: [] for venue in feeds}
    for record in read_records(path):
        kind = record.get("kind")
        if record["venue"] in frames and kind != "sent":
            frames[record["venue"]].append((kind, record["frame"], record.get("url", "")))
    found = {venue: items for venue, items in frames.items() if items}
    if len(found) < len(frames):
        log.warning(
            "replay: no frames for %s in %s", ", ".join(sorted(set(frames) - set(found))), path
        )
    if not found:
        return []
    # Turns sized by each venue's share, so the loop interleaves the venues in the recording's
    # proportions and every venue comes to the end of the recording at about the same time.
    fewest = min(len(items) for items in found.values())
    return [
        RecordedConnection(
            feeds[venue],
            items,
            on_books_changed=on_books_changed,
            batch=max(1, round(TURN * len(items) / fewest)),
        )
        for venue, items in found.items()
    ]
