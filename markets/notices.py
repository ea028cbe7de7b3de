"""Live notices: the one way any process tells the pages that something changed.

A notice names a kind of change ("market" with its symbol, "trades", "portfolio", ...) and goes to
that kind's Channels group once the surrounding transaction commits; the web process holding the
pages decides what to re-render and for whom (arbsite.live). Publishers know nothing of pages.
An announcement is a notice that carries its own words: a desk event the pages show as a
notification to the users who may see its category.
"""

import asyncio
import contextlib
import hashlib
import logging
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

NOTICE_TYPE = "live.notice"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_GROUP_NAME = 99  # channels refuses a group name of 100 characters or more

# The kinds of change, each re-rendering the fragments the site maps to it.
MARKET = "market"  # keyed by market symbol: its books moved
OPPORTUNITIES = "opportunities"
HEALTH = "health"  # venue feeds, the kill switch, automatic execution
TRADES = "trades"
PORTFOLIO = "portfolio"
RISK_STATUS = "risk-status"
ALERT = "alert"  # keyed by its category: an announcement of a desk event, in words

# The categories of announcements; arbsite.live decides which users may see each.
TRADE_EVENTS = "trades"  # a trade closed, failed, hedged or unwound
KILL_SWITCH = "kill-switch"  # thrown, tripped or reset
FEEDS = "feeds"  # a venue's feed went down or came back
LIMITS = "limits"  # a risk limit refused a trade
# How loud an announcement is: an error stays on the page until someone dismisses it.
ERROR, WARNING, SUCCESS, INFO = "error", "warning", "success", "info"
LEVELS = (ERROR, WARNING, SUCCESS, INFO)


# The interpreter's switch interval in a process that sends notices from a thread (Sender).
SWITCH_S = 0.0005


def group(kind: str, key: str = "") -> str:
    """The Channels group a notice of `kind` (and `key`) goes to: a valid name for any key."""
    if not key:
        return f"live.{kind}"
    name = f"live.{kind}.{_UNSAFE.sub('_', key)}"
    if len(name) <= MAX_GROUP_NAME:
        return name
    # Cut to fit, and told apart from other long keys by a digest of the whole key.
    digest = hashlib.blake2b(key.encode(errors="surrogatepass"), digest_size=8).hexdigest()
    return f"{name[: MAX_GROUP_NAME - len(digest) - 1]}.{digest}"


def notice(kind: str, key: str = "", published: float | None = None) -> dict:
    """A notice of `kind` (and `key`); the notices of one batch share their publish time."""
    published = time.time() if published is None else published
    return {"type": NOTICE_TYPE, "kind": kind, "key": key, "published": published}


def publish(kind: str, key: str = "") -> None:
    """Tell the pages `kind` changed once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(group(kind, key), notice(kind, key)))


def announcement(category: str, text: str, level: str = INFO) -> dict:
    if level not in LEVELS:
        raise ValueError(f"An announcement's level is one of {LEVELS}, not {level!r}.")
    return {**notice(ALERT, category), "text": text, "level": level, "id": uuid.uuid4().hex}


def announce(category: str, text: str, *, level: str = INFO) -> None:
    """Tell the pages of everyone who may see `category` that `text` happened, once the current
    transaction commits (at once outside one): a rolled-back event is never announced."""
    body = announcement(category, text, level)
    transaction.on_commit(lambda: _send(group(ALERT, category), body))


def _send(name: str, body: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(name, body)


class Pump:
    """The engine's coalescing publisher: `mark` a change per frame, `run` sends it.

    The first change after a quiet interval goes out at once (the leading edge); what is marked
    while the interval that follows runs goes out together at its end (the trailing edge), so a
    page hears of a change without waiting for a tick, and a burst still costs one send of each
    marked change per interval. `mark` never blocks and allocates no more than a set entry, so it
    is safe on the hot path.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.dirty: set[tuple[str, str]] = set()
        self._marked = asyncio.Event()
        self._sending: Sender | None = None

    def _sender(self) -> "Sender":
        if self._sending is None:
            self._sending = Sender()
        return self._sending

    def mark(self, kind: str, key: str = "") -> None:
        self.dirty.add((kind, key))
        if not self._marked.is_set():
            self._marked.set()

    async def send_marked(self) -> int:
        """Send one notice per marked change, together; return how many were sent.

        On a busy engine loop each Redis round trip waits for a turn, so they go out at once: in
        one batch where the layer can (two round trips), else concurrently.
        """
        marked, self.dirty = self.dirty, set()
        if not marked:
            return 0
        layer = get_channel_layer()
        now = time.time()
        batch = [(group(kind, key), notice(kind, key, now)) for kind, key in marked]
        if hasattr(layer, "send_bundled"):  # the Redis layer's (arbsite.channel_layer)
            try:
                await self._sender().send(batch)
            except Exception as error:
                log.error("live notices to %s failed: %r", ", ".join(n for n, _ in batch), error)
            return len(batch)
        sent = await asyncio.gather(
            *(layer.group_send(name, body) for name, body in batch), return_exceptions=True
        )
        for (name, _), error in zip(batch, sent, strict=True):
            if error is not None:
                log.error("live notice to %s failed: %r", name, error)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        # From the start, not the first send: the process's other threads (the book publisher's,
        # the sender's) want the interpreter lock for short turns while its loop is busy with
        # frames, and the first notice waits for the first books to be published (see Sender).
        sys.setswitchinterval(SWITCH_S)
        while not stop.is_set():
            await _first(self._marked, stop)
            self._marked.clear()
            await self.send_marked()
            # The interval after a send: changes marked meanwhile wait for its end, together.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
        await self.send_marked()  # what was marked last still reaches the pages
        if self._sending is not None:
            self._sending.close()
            self._sending = None


class Sender:
    """A thread of its own with a synchronous Redis client, that sends the pump's batches.

    On the engine's loop a Redis round trip of redis-py took six turns of the loop (each await
    in the client's pool, write and read is one), 11 ms on a loop whose turns took 1.8 ms. On a
    thread, each blocking round trip waits for Redis and then for the interpreter lock.

    That wait is the switch interval: the engine's loop, busy with frames, holds the lock until
    a thread has waited that long for it. At Python's 5 ms a batch took 6 ms (p50) and 16 ms
    (p90) to leave; the pump that runs it sets SWITCH_S for its process (the engine's: its
    other threads, the book publisher's and this one, want the lock only for short turns).
    """

    def __init__(self) -> None:
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-notices")

    async def send(self, batch: list[tuple[str, dict]]) -> None:
        """`send_bundled` of `batch` on the sender's thread; raises what it raised."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.thread, self.layer.send_bundled, batch)

    def close(self) -> None:
        self.thread.shutdown(wait=True)
        self.layer.close_clients()


async def _first(*events: asyncio.Event) -> None:
    """Return as soon as any of `events` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
