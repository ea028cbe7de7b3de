"""KuCoin spot feed: the bullet-public token handshake, `/market/level2` changes calibrated
against the REST snapshot by their sequence numbers, JSON pings, a new token after expiry."""

import uuid
from itertools import count
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from markets.book import WireLevel, parse_level
from markets.venues.events import Reconnect, Send
from markets.venues.feed import NO_CHANGE, SnapshotFeed

BULLET = "/api/v1/bullet-public"
# The unsigned snapshot: the full book (/api/v3/market/orderbook/level2) needs an API key.
PARTIAL_BOOK = "/api/v1/market/orderbook/level2_100"
PARTIAL_DEPTH = 100
TOPIC = "/market/level2"
TOPIC_SYMBOLS = 100  # KuCoin takes at most 100 symbols in one topic
# KuCoin wants a ping at least every pingInterval (18 s); more often is allowed, and a pong every
# few seconds is what tells a quiet socket from a frozen one.
PING_EVERY = 5.0

# One message: (sequenceStart, sequenceEnd, bid changes, ask changes), each change
# (sequence, level or None for the price-"0" changes that only advance the sequence).
Change = tuple[int, WireLevel | None]
Message = tuple[int, int, list[Change], list[Change]]


def parse_changes(changes: list) -> list[Change]:
    """Validate one side's [price, size, sequence] changes."""
    parsed = []
    for price, size, sequence in changes:
        level = None if price == "0" else (*parse_level(price, size), None)
        parsed.append((int(sequence), level))
    return parsed


def _levels(levels: list) -> list[WireLevel]:
    return [(*parse_level(price, size), None) for price, size, *_ in levels]


class KucoinFeed(SnapshotFeed):
    """One KuCoin connection: each book follows the documented calibration procedure."""

    idle_timeout = 15.0  # three pongs missed
    freeze_after = 7.0  # a quiet book pushes nothing, but a pong comes at least every 5 s

    def __init__(
        self,
        venue: str,
        url: str,
        symbols: dict[str, str],
        rest_url: str,
        snapshot_depth: int | None = PARTIAL_DEPTH,
    ) -> None:
        super().__init__(venue, url, symbols)
        self.rest_url = rest_url.rstrip("/")
        self.snapshot_depth = snapshot_depth
        self.ping_interval = PING_EVERY
        self.welcomed = False
        self.pending_acks: set[str] = set()
        # Per market: the worst bid and ask of a partial snapshot. Levels beyond them were not in
        # it, so changes there are skipped: the book is exact up to its horizon.
        self.horizons: dict[str, tuple] = {}
        self._ids = count(1)

    @classmethod
    def recorded_subscription(cls, sent: list[str], url: str) -> tuple[list[str], dict]:
        symbols: list[str] = []
        for text in sent:
            msg = orjson.loads(text)
            topic, _, names = msg.get("topic", "").partition(":")
            if msg.get("type") == "subscribe" and topic == TOPIC:
                symbols += [s for s in names.split(",") if s not in symbols]
        return symbols, {}

    # -- connecting --------------------------------------------------------------------------

    def handshake_request(self) -> tuple[str, str]:
        return "POST", self.rest_url + BULLET

    def handle_handshake(self, body: str) -> None:
        """Take the token and instance server of a bullet answer: the next socket's URL."""
        try:
            data = orjson.loads(body)["data"]
            server = data["instanceServers"][0]
            endpoint, token = server["endpoint"], data["token"]
            interval = server["pingInterval"] / 1000
            if not isinstance(endpoint, str) or not isinstance(token, str) or interval <= 0:
                raise ValueError("bad instance server")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"{self.venue}: unusable bullet answer: {body[:200]!r}") from exc
        query = urlencode({"token": token, "connectId": uuid.uuid4().hex})
        self.url = f"{endpoint}?{query}"
        self.ping_interval = min(interval, PING_EVERY)

    def subscribe_messages(self) -> list[str]:
        return []  # KuCoin wants the welcome first: subscriptions follow it

    @property
    def subscribed(self) -> bool:
        return self.welcomed and not self.pending_acks

    def ping_message(self) -> str:
        return orjson.dumps({"id": str(next(self._ids)), "type": "ping"}).decode()

    def reset(self, reason: str) -> None:
        super().reset(reason)
        self.welcomed = False
        self.pending_acks.clear()

    def snapshot_url(self, market: str) -> str:
        """The REST book of `market`, public (partial) or full when `snapshot_depth` is None."""
        path = PARTIAL_BOOK if self.snapshot_depth else "/api/v3/market/orderbook/level2"
        return f"{self.rest_url}{path}?{urlencode({'symbol': self.symbols[market]})}"

    def snapshot_market(self, url: str) -> str | None:
        return self.markets.get(parse_qs(urlsplit(url).query).get("symbol", [""])[0])

    # -- frames ------------------------------------------------------------------------------

    def handle(self, text: str, received_ts: float) -> tuple[str, ...] | list[str]:
        self.stats.frames += 1
        try:
            msg = orjson.loads(text)
            kind = msg["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return self.malformed(repr(exc), text)
        if kind == "message":
            return self._handle_message(msg, text, received_ts)
        if kind == "welcome":
            return self._welcome()
        if kind == "ack":
            self.pending_acks.discard(msg.get("id"))
        elif kind == "error":
            # A refused or expired token among them: only a new handshake brings a new one.
            self.actions.append(Reconnect(f"venue error {msg.get('code')}"))
            return self.venue_error(text)
        elif kind != "pong":
            self.stats.ignored += 1
        return NO_CHANGE

    def _welcome(self) -> tuple[str, ...]:
        self.welcomed = True
        symbols = list(self.markets)
        for start in range(0, len(symbols), TOPIC_SYMBOLS):
            request_id = str(next(self._ids))
            topic = f"{TOPIC}:{','.join(symbols[start : start + TOPIC_SYMBOLS])}"
            subscribe = {"id": request_id, "type": "subscribe", "topic": topic, "response": True}
            self.pending_acks.add(request_id)
            self.actions.append(Send(orjson.dumps(subscribe | {"privateChannel": False}).decode()))
        return NO_CHANGE

    def _handle_message(self, msg: dict, text: str, received_ts: float) -> list | tuple:
        if msg.get("subject") != "trade.l2update":
            self.stats.ignored += 1
            return NO_CHANGE
        try:
            data = msg["data"]
            market = self.markets[data["symbol"]]
            first, last = int(data["sequenceStart"]), int(data["sequenceEnd"])
            changes = data["changes"]
            message = (first, last, parse_changes(changes["bids"]), parse_changes(changes["asks"]))
            if first > last:
                raise ValueError("sequenceStart after sequenceEnd")
            exchange_ts = data["time"] / 1000 if "time" in data else None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return self.malformed(repr(exc), text)
        book = self.books[market]
        if not book.valid:
            self._buffer(market, message)
            return NO_CHANGE
        if not self._apply(market, message):
            return [market]  # it just became invalid
        self.stamp(book, exchange_ts, received_ts)
        return self._check_crossed(market)

    def handle_snapshot(self, market: str, body: str, received_ts: float) -> list[str]:
        """Load `market` from a REST book answer, then replay the buffered messages on it."""
        self.requested.discard(market)
        try:
            data = orjson.loads(body)["data"]
            sequence = int(data["sequence"])
            bids, asks = _levels(data["bids"]), _levels(data["asks"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.malformed(f"snapshot {exc!r}", body)
            self._request_snapshot(market)
            return []
        book = self.books[market]
        book.load(bids, asks, sequence)
        self._set_horizon(market, bids, asks)
        self.stamp(book, None, received_ts)
        messages, self.buffers[market] = self.buffers[market], []
        for i, message in enumerate(messages):
            if not self._apply(market, message):
                self.buffers[market] = messages[i:]
                return [market]
        return self._check_crossed(market)

    def _set_horizon(self, market: str, bids: list[WireLevel], asks: list[WireLevel]) -> None:
        depth = self.snapshot_depth
        worst_bid = min(p for p, _, _ in bids) if depth and len(bids) >= depth else None
        worst_ask = max(p for p, _, _ in asks) if depth and len(asks) >= depth else None
        self.horizons[market] = (worst_bid, worst_ask)

    def _apply(self, market: str, message: Message) -> bool:
        """Apply one message if it continues the book; on a gap invalidate and resync."""
        first, last, bids, asks = message
        book = self.books[market]
        if last <= book.sequence:
            return True  # already in the snapshot
        if first > book.sequence + 1:
            self.stats.gaps += 1
            book.invalidate(f"gap {book.sequence} -> {first}")
            self.buffers[market] = [message]
            self._request_snapshot(market)
            return False
        worst_bid, worst_ask = self.horizons.get(market, (None, None))
        after = book.sequence
        book.apply(
            [level for seq, level in bids if seq > after and _within(level, worst_bid, -1)],
            [level for seq, level in asks if seq > after and _within(level, worst_ask, 1)],
        )
        book.sequence = last
        self.stats.book_updates += 1
        return True


def _within(level: WireLevel | None, horizon, direction: int) -> bool:
    """Whether a change sets a level the book tracks: not a price-"0" one, not past the horizon
    (below the worst bid: direction -1; above the worst ask: +1)."""
    if level is None:
        return False
    return horizon is None or (level[0] - horizon) * direction <= 0
