"""The one connection manager: keeps a venue feed's WebSocket alive and performs its resync actions.

Backoff with full jitter, a circuit breaker, idle detection, app pings, health counters.
"""

import asyncio
import contextlib
import logging
import random
import time
import urllib.request
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect

from markets.venues.events import FetchSnapshot, Reconnect, Send
from markets.venues.feed import Feed

log = logging.getLogger(__name__)

FrameHook = Callable[[str, str, float, str, str], None]  # venue, text, ts, kind, url
BooksHook = Callable[[str, list[str]], None]  # venue, changed markets


class StaleConnection(Exception):
    """No frame (or no subscription confirmation) in time: the socket is treated as dead."""


def retry_after(exc: Exception) -> float:
    """The seconds an HTTP error's Retry-After asks to wait (Binance sends it with a 429 and
    with the 418 of an IP ban), 0 when there is none. Only the delay-seconds form is read: an
    HTTP date is left to the growing backoff."""
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After", "").strip() if headers is not None else ""
    return float(value) if value.isdecimal() else 0.0


def http_get(url: str, timeout: float, method: str = "GET") -> str:
    """GET (or POST, empty) `url` and return the body text (run in a thread: urllib blocks)."""
    data = b"" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


class Connection:
    """One venue connection: connect, subscribe, read on its own task, resync, reconnect."""

    def __init__(
        self,
        feed: Feed,
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        circuit_threshold: int = 10,
        circuit_cooldown: float = 300.0,
        idle_timeout: float | None = None,
        subscribe_timeout: float = 10.0,
        open_timeout: float = 10.0,
        rest_timeout: float = 10.0,
        on_frame: FrameHook | None = None,
        on_books_changed: BooksHook | None = None,
    ) -> None:
        self.feed = feed
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.circuit_threshold = circuit_threshold
        self.circuit_cooldown = circuit_cooldown
        self.idle_timeout = idle_timeout if idle_timeout is not None else feed.idle_timeout
        self.subscribe_timeout = subscribe_timeout
        self.open_timeout = open_timeout
        self.rest_timeout = rest_timeout
        self.on_frame = on_frame
        self.on_books_changed = on_books_changed
        self.state = "connecting"
        self.failures = 0  # consecutive attempts that never went live
        self.reconnects = 0
        self.idle_timeouts = 0
        self.connections = 0
        self.last_frame_ts: float | None = None
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._snapshot_tasks: set[asyncio.Task] = set()
        self._went_live = False
        self._closing: asyncio.Future | None = None

    # -- public ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the venue connected until `stop()` or cancellation."""
        try:
            while not self._stopping.is_set():
                await self._attempt()
                if self._stopping.is_set():
                    break
                self.reconnects += 1
                await self._wait_before_retry()
        finally:
            self.feed.reset("stopped")

    def stop(self) -> None:
        """Ask `run()` to close the socket and return."""
        self._stopping.set()
        if self._ws is not None:
            self._closing = asyncio.ensure_future(self._ws.close())

    def shown_state(self, last_frame_age: float | None) -> str:
        """The state as the desk should read it: a live socket with no frame, not even a
        heartbeat, for the feed's `freeze_after` is "frozen", long before the idle timeout."""
        frozen = last_frame_age is not None and last_frame_age > self.feed.freeze_after
        return "frozen" if self.state == "live" and frozen else self.state

    def health(self) -> dict:
        """Return the connection's state and counters as a plain dict."""
        stats = self.feed.stats
        age = None if self.last_frame_ts is None else time.time() - self.last_frame_ts
        return {
            "venue": self.feed.venue,
            "state": self.shown_state(age),
            "frames": stats.frames,
            "reconnects": self.reconnects,
            "idle_timeouts": self.idle_timeouts,
            "gaps": stats.gaps,
            "checksum_failures": stats.checksum_failed,
            "malformed": stats.malformed,
            "resyncs": stats.resyncs,
            "consecutive_failures": self.failures,
            "last_frame_age": age,
            "books_valid": sum(book.valid for book in self.feed.books.values()),
            "lag": max((book.lag for book in self.feed.books.values()), default=0.0),
            "books": len(self.feed.books),
            "errors": stats.errors[-5:],
        }

    # -- one connection ----------------------------------------------------------------------

    async def _attempt(self) -> None:
        self.state = "connecting"
        self._went_live = False
        url = self.feed.url
        try:
            url = await self._handshake()
            async with connect(
                url, max_size=self.feed.max_size, open_timeout=self.open_timeout, close_timeout=1
            ) as ws:
                self._ws = ws
                self.connections += 1
                await self._session(ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of one connection ends in a reconnect
            log.warning("%s: connection to %s ended: %r", self.feed.venue, url, exc)
        finally:
            self._ws = None
            for task in list(self._snapshot_tasks):
                task.cancel()
            self.feed.reset("disconnected")
            if not self._went_live:
                self.failures += 1

    async def _handshake(self) -> str:
        """Where to connect: the feed's URL, once the feed read its venue's answer to a
        pre-connection request (KuCoin's token) when it makes one; failing counts as an attempt."""
        request = self.feed.handshake_request()
        if request is not None:
            method, url = request
            body = await asyncio.to_thread(http_get, url, self.rest_timeout, method)
            self.feed.handle_handshake(body)
        return self.feed.url

    async def _session(self, ws: ClientConnection) -> None:
        self.feed.reset("connecting")
        for text in self.feed.subscribe_messages():
            await self._send(ws, text)
        self.last_frame_ts = time.time()
        reader = asyncio.create_task(self._read(ws))
        watchdog = asyncio.create_task(self._watch(ws))
        try:
            done, _ = await asyncio.wait({reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise why the session ended
        finally:
            reader.cancel()
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(reader, watchdog)

    async def _read(self, ws: ClientConnection) -> None:
        """Read frames on a dedicated task and feed them to the venue's `handle`."""
        feed, on_frame, on_books = self.feed, self.on_frame, self.on_books_changed
        venue, url = feed.venue, feed.url
        async for text in ws:
            ts = time.time()
            self.last_frame_ts = ts
            if on_frame is not None:
                on_frame(venue, text, ts, "recv", url)
            changed = feed.handle(text, ts)
            if changed and on_books is not None:
                on_books(venue, list(changed))
            if feed.actions:
                await self._perform(ws, feed.take_actions())
            if not self._went_live and feed.subscribed:
                self.state = "live"
                self._went_live = True
                self.failures = 0

    async def _watch(self, ws: ClientConnection) -> None:
        """Declare the socket dead when it goes quiet; send app pings where the venue wants them."""
        started = time.time()
        tick = min(self.idle_timeout, self.subscribe_timeout) / 4
        next_ping = started + (self.feed.ping_interval or float("inf"))
        while True:
            await asyncio.sleep(tick)
            now = time.time()
            if not self._went_live and now - started > self.subscribe_timeout:
                raise StaleConnection("subscription not confirmed")
            if now - self.last_frame_ts > self.idle_timeout:
                self.state = "stale"
                self.idle_timeouts += 1
                raise StaleConnection(f"no frame for {self.idle_timeout} s")
            if now >= next_ping:
                next_ping = now + self.feed.ping_interval
                await self._send(ws, self.feed.ping_message())

    async def _perform(self, ws: ClientConnection, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                await self._send(ws, action.text)
            elif isinstance(action, FetchSnapshot):
                # Not awaited here: the reader must keep buffering diffs while the GET runs.
                task = asyncio.create_task(self._fetch_snapshot(ws, action))
                self._snapshot_tasks.add(task)
                task.add_done_callback(self._snapshot_tasks.discard)
            elif isinstance(action, Reconnect):
                raise StaleConnection(action.reason)

    async def _fetch_snapshot(self, ws: ClientConnection, action: FetchSnapshot) -> None:
        try:
            await self._apply_snapshot(ws, action)
        except Exception as exc:  # the reader task notices a dead socket; this task just ends
            # A market left "requested" with no fetch under way would never ask again (its
            # diffs only buffer): let the next diff ask.
            self.feed.requested.discard(action.market)
            log.warning("%s: snapshot %s failed: %r", self.feed.venue, action.url, exc)

    async def _apply_snapshot(self, ws: ClientConnection, action: FetchSnapshot) -> None:
        body = await self._download_snapshot(action.url)
        ts = time.time()
        if self.on_frame is not None:
            self.on_frame(self.feed.venue, body, ts, "rest", action.url)
        changed = self.feed.handle_snapshot(action.market, body, ts)
        if changed and self.on_books_changed is not None:
            self.on_books_changed(self.feed.venue, changed)
        if self.feed.actions:
            await self._perform(ws, self.feed.take_actions())

    async def _download_snapshot(self, url: str) -> str:
        """The body at `url`, asked again after a pause for as long as the download fails.

        Any failure: besides refusals and HTTP errors (OSError), a body cut short
        (`http.client.IncompleteRead`) or not UTF-8 raise other errors, and the book waits
        for this body whatever went wrong.
        """
        failures = 0  # in a row, for this market: a new fetch starts again from the base
        while True:
            try:
                return await asyncio.to_thread(http_get, url, self.rest_timeout)
            except Exception as exc:
                delay = self.snapshot_delay(failures, exc)
                log.warning(
                    "%s: snapshot %s failed, asking again in %.1f s: %r",
                    self.feed.venue,
                    url,
                    delay,
                    exc,
                )
            failures += 1
            await asyncio.sleep(delay)

    def snapshot_delay(self, failures: int, exc: Exception) -> float:
        """Seconds before asking again for a snapshot whose download just failed with `exc`,
        after `failures` failures before it in a row: the connection's own jittered backoff,
        and at least the venue's Retry-After (429s not waited out bring Binance's 418, an IP
        ban)."""
        return max(self.backoff(failures), retry_after(exc))

    async def _send(self, ws: ClientConnection, text: str) -> None:
        if self.on_frame is not None:
            self.on_frame(self.feed.venue, text, time.time(), "sent", self.feed.url)
        await ws.send(text)

    # -- between connections ----------------------------------------------------------------

    def retry_delay(self) -> float:
        """Seconds until the next attempt: full-jitter exponential backoff over the failures in a
        row; once they reach the threshold the circuit opens for its cool-down, and each attempt
        after one (half-open) that fails too opens it again."""
        if self.failures >= self.circuit_threshold:
            self.state = "circuit_open"
            log.error("%s: circuit open after %d failures", self.feed.venue, self.failures)
            return self.circuit_cooldown
        self.state = "backing_off"
        return self.backoff(self.failures)

    def backoff(self, failures: int) -> float:
        """Full jitter: a random delay up to the base doubled per failure, at most the cap."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**failures))

    async def _wait_before_retry(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.retry_delay())
