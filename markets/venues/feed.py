"""The venue feed interface: one class per venue turns its raw text frames into book changes.

A feed is pure of I/O, so the same object runs behind a live socket (`connection.Connection`),
a recorded file (replay) or a test:

    feed = CoinbaseFeed("coinbase", url, {"BTC-USD": "BTC-USD"})
    feed.handle_handshake(body)                   # answer to handshake_request() (KuCoin only)
    for text in feed.subscribe_messages(): send(text)
    changed = feed.handle(text, received_ts)      # canonical markets whose books changed
    for action in feed.take_actions(): ...        # Send / Reconnect / FetchSnapshot (events.py)
    feed.handle_snapshot(market, body, ts)        # REST snapshot body (Binance; no-op elsewhere)
    feed.reset("disconnected")                    # the socket dropped: every book is invalid
    feed.books["BTC-USD"]                         # markets.book.Book, one per canonical market

Nothing outside a venue module knows that venue's wire format. `handle` never raises: a bad
frame is counted in `stats.malformed`, logged with the venue and leaves every book unchanged.
"""

import logging
import time
from collections.abc import Mapping
from datetime import datetime

from markets import core
from markets.book import Book
from markets.venues.events import Action, FeedStats, FetchSnapshot

log = logging.getLogger(__name__)
MALFORMED_LOG_S = 10.0

NO_CHANGE: tuple[str, ...] = ()


def exchange_time(timestamp: str | None) -> float | None:
    """Return epoch seconds of an RFC 3339 timestamp (nanoseconds allowed), None if absent."""
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp).timestamp()


class Feed:
    """Base of the venue modules: books, counters and the queue of resync actions."""

    # Per-venue connection facts read by the connection manager; subclasses override.
    idle_timeout: float = 30.0
    # No frame at all (heartbeats count) for this long: the feed is frozen though its socket
    # lives, and the desk says so long before the idle timeout drops the socket.
    freeze_after: float = 3.0
    # The most of a delay put down to the venue's clock being behind ours and to the network;
    # anything beyond is lag. Without it, a venue lagging since before its first stamped frame
    # would set the usual delay to its lag. Both clocks are meant to be NTP-synced: a venue
    # whose clock is further behind than this reads as lagging, and the desk says so.
    max_clock_offset: float = 0.25
    ping_interval: float | None = None
    max_size: int | None = 2**20

    def __init__(self, venue: str, url: str, symbols: Mapping[str, str], depth: int | None = None):
        self.venue = venue
        self.url = url
        self.symbols = dict(symbols)
        self.markets = {venue_symbol: market for market, venue_symbol in self.symbols.items()}
        # The books are the active core's (`markets.core`): the compiled one when built. A feed
        # parses with `self.core`'s functions, or hands the books `markets.book` `WireLevel`s
        # (KuCoin, OKX), which either core's `Book` takes.
        self.core = core.active()
        self.books: dict[str, Book] = {
            market: self.core.Book(venue, market, depth) for market in self.symbols
        }
        self.stats = FeedStats()
        self._malformed_logged = 0  # stats.malformed when one was last logged
        self._malformed_log_at = float("-inf")  # when the next may be (monotonic)
        self.actions: list[Action] = []
        # The smallest receive - venue time seen: the venue's clock offset plus the network's
        # fastest delay. A change that took longer than that lags by the difference.
        self.clock_offset: float | None = None

    def stamp(self, book: Book, exchange_ts: float | None, received_ts: float) -> None:
        """Stamp `book` with the change's venue time and receive time, and how late it came."""
        lag = 0.0
        if exchange_ts is not None:
            delay = received_ts - exchange_ts
            offset = self.clock_offset
            if offset is None or delay < offset:
                self.clock_offset = offset = min(delay, self.max_clock_offset)
            lag = delay - offset
        book.stamp(exchange_ts, received_ts, lag)

    def subscribe_messages(self) -> list[str]:
        """Return the text frames to send right after connecting."""
        raise NotImplementedError

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        """From a recording's sent frames and connection URL: (venue symbols, feed options)."""
        raise NotImplementedError

    @property
    def subscribed(self) -> bool:
        """True once the venue confirmed every subscription of this connection."""
        raise NotImplementedError

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        """Process one received frame; return the canonical markets whose books changed."""
        raise NotImplementedError

    def handle_snapshot(self, market: str, body: str, received_ts: float) -> list[str]:
        """Apply a REST snapshot body; only venues that ask for `FetchSnapshot` implement it."""
        return []

    def snapshot_market(self, url: str) -> str | None:
        """Return the market a recorded REST snapshot URL was fetched for (FetchSnapshot venues)."""
        return None

    def handshake_request(self) -> tuple[str, str] | None:
        """(method, URL) to call before each connection, for venues that hand out the socket's
        address and token that way (KuCoin); None: connect to `url` as it is."""
        return None

    def handle_handshake(self, body: str) -> None:
        """Take the answer to `handshake_request` (sets `url`); raise ValueError if unusable."""

    def ping_message(self) -> str | None:
        """Return an application-level ping frame, for venues that want one."""
        return None

    def take_actions(self) -> list[Action]:
        """Return and forget the actions the connection manager must perform."""
        actions, self.actions = self.actions, []
        return actions

    def reset(self, reason: str) -> None:
        """Forget the connection's state: every book invalid, no pending actions, and the
        usual delay learnt again from the next connection's frames."""
        for book in self.books.values():
            book.invalidate(reason)
        self.actions = []
        self.clock_offset = None

    def malformed(self, reason: str, text: str) -> tuple[str, ...]:
        """Count a frame that could not be used and log it (the first, then at most one every
        MALFORMED_LOG_S with how many came since); return 'no change'.

        A warning per frame was a flood: a replay of a recording holding markets the database
        does not list logged 287,722 of them in 20 s, and spent the engine's time on it.
        """
        self.stats.malformed += 1
        now = time.monotonic()
        if now >= self._malformed_log_at:
            unlogged = self.stats.malformed - self._malformed_logged - 1
            since = f" (and {unlogged} more since the last one)" if unlogged else ""
            log.warning("%s: malformed frame (%s): %.200s%s", self.venue, reason, text, since)
            self._malformed_logged = self.stats.malformed
            self._malformed_log_at = now + MALFORMED_LOG_S
        return NO_CHANGE

    def venue_error(self, text: str) -> tuple[str, ...]:
        """Keep an error the venue reported (failed subscribe, rate limit) for health pages."""
        self.stats.errors.append(text[:200])
        del self.stats.errors[:-20]
        log.error("%s: venue error: %.200s", self.venue, text)
        return NO_CHANGE


class SnapshotFeed(Feed):
    """A feed whose books start from a REST snapshot (Binance, KuCoin): what arrives before it
    waits in a buffer per market, and a gap or a crossed book asks for a new one. Subclasses
    give `snapshot_url` and how a buffered update is applied."""

    # Updates kept while a snapshot is on its way; more than this means it is hopeless.
    max_buffered = 2000

    def __init__(self, venue: str, url: str, symbols: Mapping[str, str], depth: int | None = None):
        super().__init__(venue, url, symbols, depth)
        self.buffers: dict[str, list] = {m: [] for m in self.symbols}
        self.requested: set[str] = set()  # markets whose snapshot is on its way

    def snapshot_url(self, market: str) -> str:
        raise NotImplementedError

    def reset(self, reason: str) -> None:
        super().reset(reason)
        for buffer in self.buffers.values():
            buffer.clear()
        self.requested.clear()

    def _buffer(self, market: str, update: object) -> None:
        buffer = self.buffers[market]
        if len(buffer) >= self.max_buffered:
            buffer.clear()
        buffer.append(update)
        if market not in self.requested:
            self._request_snapshot(market)

    def _request_snapshot(self, market: str) -> None:
        self.requested.add(market)
        self.stats.resyncs += 1
        self.actions.append(FetchSnapshot(market, self.snapshot_url(market)))

    def _check_crossed(self, market: str) -> list[str]:
        book = self.books[market]
        if book.crossed:
            book.invalidate("crossed")
            self.buffers[market] = []
            self._request_snapshot(market)
        return [market]
