"""Live notices: the one way any process tells the pages that something changed.

A notice names a kind of change ("market" with its symbol, "trades", "portfolio", ...) and goes to
that kind's Channels group once the surrounding transaction commits; the web process holding the
pages decides what to re-render and for whom (arbsite.live). Publishers know nothing of pages.
"""

import asyncio
import contextlib
import hashlib
import logging
import re
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
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


def notice(kind: str, key: str = "") -> dict:
    return {"type": NOTICE_TYPE, "kind": kind, "key": key, "published": time.time()}


def publish(kind: str, key: str = "") -> None:
    """Tell the pages `kind` changed once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(kind, key))


def _send(kind: str, key: str) -> None:
    async_to_sync(get_channel_layer().group_send)(group(kind, key), notice(kind, key))


class Pump:
    """The engine's coalescing publisher: `mark` a change per frame, `run` sends each once a tick.

    `mark` never blocks and never allocates more than a set entry, so it is safe on the hot path.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.dirty: set[tuple[str, str]] = set()

    def mark(self, kind: str, key: str = "") -> None:
        self.dirty.add((kind, key))

    async def send_marked(self) -> int:
        """Send one notice per marked change, together; return how many were sent.

        On a busy engine loop each Redis round trip waits for a turn, so they go out at once.
        """
        marked, self.dirty = self.dirty, set()
        if not marked:
            return 0
        layer = get_channel_layer()
        batch = [(group(kind, key), notice(kind, key)) for kind, key in marked]
        sent = await asyncio.gather(
            *(layer.group_send(name, body) for name, body in batch), return_exceptions=True
        )
        for (name, _), error in zip(batch, sent, strict=True):
            if error is not None:
                log.error("live notice to %s failed: %r", name, error)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            await self.send_marked()
