"""Tests for the Coinbase feed: Advanced Trade frames, sequence gaps, real-data book mechanics."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from markets import core
from markets.book import Book, parse_level
from markets.venues.coinbase.feed import CoinbaseFeed
from markets.venues.events import Send
from tests.recordings import CRYPTOFEED


def frame(seq: int, channel: str = "l2_data", events: list | None = None) -> str:
    return json.dumps(
        {
            "channel": channel,
            "timestamp": "2023-02-09T20:32:50.714964855Z",
            "sequence_num": seq,
            "events": events or [],
        }
    )


def l2(kind: str, product: str, *updates: tuple[str, str, str]) -> dict:
    return {
        "type": kind,
        "product_id": product,
        "updates": [
            {"side": s, "event_time": "1970-01-01T00:00:00Z", "price_level": p, "new_quantity": q}
            for s, p, q in updates
        ],
    }


CORES = [which for which in (core.REFERENCE, core.COMPILED) if which is not None]

SNAPSHOT = l2(
    "snapshot", "BTC-USD", ("bid", "100.0", "1"), ("bid", "99", "2"), ("offer", "101", "3")
)


@pytest.fixture
def feed() -> CoinbaseFeed:
    feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD", "ETH-USD": "ETH-USD"})
    feed.handle(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1.0)
    feed.handle(frame(1, events=[SNAPSHOT]), 1.0)
    return feed


def test_subscribe_messages_one_per_channel():
    feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD"})

    messages = [json.loads(m) for m in feed.subscribe_messages()]

    assert messages == [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": [], "channel": "heartbeats"},
    ]


def test_snapshot_then_updates_give_the_right_book(feed):
    changed = feed.handle(
        frame(2, events=[l2("update", "BTC-USD", ("bid", "100", "0"), ("offer", "100.5", "4"))]),
        2.0,
    )

    book = feed.books["BTC-USD"]
    assert changed == ["BTC-USD"]
    assert feed.subscribed and book.valid
    assert book.best_bid() == (Decimal("99"), Decimal("2"))
    assert book.best_ask() == (Decimal("100.5"), Decimal("4"))
    assert book.sequence == 2 and book.received_ts == 2.0
    assert book.exchange_ts == pytest.approx(1675974770.714964)


def test_heartbeat_counter_as_int_or_string_and_no_client_id_are_accepted(feed):
    feed.handle(frame(2, "heartbeats", [{"current_time": "x", "heartbeat_counter": 3049}]), 2.0)
    feed.handle(frame(3, "heartbeats", [{"current_time": "x", "heartbeat_counter": "3050"}]), 3.0)

    assert (feed.stats.malformed, feed.stats.gaps, feed.last_seq) == (0, 0, 3)


def test_sequence_gap_invalidates_every_book_and_resubscribes(feed):
    feed.handle(frame(5, "heartbeats"), 2.0)

    actions = feed.take_actions()
    assert not feed.books["BTC-USD"].valid
    assert feed.stats.gaps == 1
    assert [json.loads(a.text) for a in actions] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
    ]
    assert all(isinstance(a, Send) for a in actions)


def test_fresh_snapshot_after_a_gap_makes_the_book_valid_again(feed):
    feed.handle(frame(5, "heartbeats"), 2.0)
    feed.handle(frame(6, events=[l2("update", "BTC-USD", ("bid", "100.2", "9"))]), 2.0)
    assert feed.books["BTC-USD"].best_bid()[0] == Decimal("100.0")

    feed.handle(frame(7, events=[SNAPSHOT]), 3.0)

    assert feed.books["BTC-USD"].valid


def test_out_of_order_old_sequence_is_ignored(feed):
    feed.handle(frame(2, events=[l2("update", "BTC-USD", ("bid", "100", "5"))]), 2.0)

    changed = feed.handle(frame(1, events=[l2("update", "BTC-USD", ("bid", "100", "7"))]), 3.0)

    assert changed == ()
    assert feed.books["BTC-USD"].best_bid() == (Decimal("100"), Decimal("5"))
    assert feed.books["BTC-USD"].valid and feed.stats.gaps == 0


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"sequence_num": 2}'])
def test_malformed_frames_without_a_sequence_leave_the_book_unchanged(feed, text):
    before = feed.books["BTC-USD"].top(50)

    changed = feed.handle(text, 2.0)

    assert changed == ()
    assert feed.stats.malformed == 1
    assert feed.books["BTC-USD"].top(50) == before and feed.books["BTC-USD"].valid


@pytest.mark.parametrize(
    "text",
    [
        frame(2, events=[l2("update", "BTC-USD", ("bid", "NaN", "1"))]),
        frame(2, events=[l2("update", "BTC-USD", ("bid", "-5", "1"))]),
        frame(2, events=[l2("update", "BTC-USD", ("bid", "1e30", "1"))]),
        frame(2, events=[l2("update", "BTC-USD", ("ask", "100", "1"))]),
        frame(2, events=[l2("update", "DOGE-USD", ("bid", "100", "1"))]),
        frame(2, events=[l2("bogus", "BTC-USD", ("bid", "100", "1"))]),
        frame(2, events=[{"type": "update", "product_id": "BTC-USD"}]),
        # A bad level after a good one must not leave the good one applied.
        frame(2, events=[l2("update", "BTC-USD", ("bid", "100.1", "1"), ("bid", "x", "1"))]),
    ],
)
def test_malformed_l2_frames_are_counted_apply_nothing_and_resync(feed, text):
    book = feed.books["BTC-USD"]
    before = (list(book.bids()), list(book.asks()))

    changed = feed.handle(text, 2.0)

    assert changed == ()
    assert feed.stats.malformed == 1
    assert (list(book.bids()), list(book.asks())) == before
    assert not book.valid and len(feed.take_actions()) == 2


@pytest.mark.parametrize(
    "bad",
    [
        ("offer", "105", "0.0000000000000000001"),  # more decimals than the parser takes
        ("ask", "105", "1"),
        ("offer", "1e30", "1"),
    ],
    ids=["number", "side", "exponent"],
)
@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_a_malformed_frame_whose_sequence_was_taken_resyncs_every_book(which, bad):
    with core.using(which):
        feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD", "ETH-USD": "ETH-USD"})
    feed.handle(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1.0)
    feed.handle(frame(1, events=[SNAPSHOT]), 1.0)
    # The venue removes the 100.0 bid; the frame is lost, and the next one is in sequence.
    lost = l2("update", "BTC-USD", ("bid", "100.0", "0"), ("bid", "98", "1"), bad)
    feed.handle(frame(2, events=[lost]), 2.0)
    feed.handle(frame(3, events=[l2("update", "BTC-USD", ("offer", "102", "1"))]), 3.0)

    book = feed.books["BTC-USD"]
    assert not book.valid and book.invalid_reason == "malformed frame"
    assert (feed.stats.malformed, feed.stats.gaps) == (1, 0)
    assert [json.loads(a.text) for a in feed.take_actions()] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
    ]


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_an_unknown_product_among_a_frames_events_resyncs_every_book(which):
    with core.using(which):
        feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD"})
    feed.handle(frame(0, events=[SNAPSHOT]), 1.0)
    known = l2("update", "BTC-USD", ("bid", "100.0", "0"))

    feed.handle(frame(1, events=[known, l2("update", "DOGE-USD", ("bid", "1", "1"))]), 2.0)

    assert not feed.books["BTC-USD"].valid
    assert feed.stats.malformed == 1 and len(feed.take_actions()) == 2


def test_crossed_book_after_a_message_is_invalidated_and_resubscribed(feed):
    feed.handle(frame(2, events=[l2("update", "BTC-USD", ("bid", "102", "1"))]), 2.0)

    assert not feed.books["BTC-USD"].valid
    assert feed.books["BTC-USD"].invalid_reason == "crossed"
    assert len(feed.take_actions()) == 2


def test_reset_invalidates_books_and_forgets_the_sequence(feed):
    feed.reset("disconnected")

    assert not feed.books["BTC-USD"].valid and feed.last_seq is None and not feed.subscribed


def read_legacy(path: Path):
    for line in path.read_text().splitlines():
        if line and line[0].isdigit():
            yield json.loads(line.split(": ", 1)[1])


def test_legacy_recording_keeps_books_uncrossed_and_matching_the_ticker():
    """Book mechanics on real Coinbase Pro traffic (legacy format, read by a test-side adapter)."""
    books: dict[str, Book] = {}
    matches = tickers = 0
    for msg in read_legacy(CRYPTOFEED / "COINBASE.ws.28.0"):
        kind = msg["type"]
        if kind == "snapshot":
            book = books[msg["product_id"]] = Book("coinbase", msg["product_id"])
            book.load(
                [(*parse_level(p, s), None) for p, s in msg["bids"]],
                [(*parse_level(p, s), None) for p, s in msg["asks"]],
            )
        elif kind == "l2update":
            book = books[msg["product_id"]]
            changes = [(side, *parse_level(p, s), None) for side, p, s in msg["changes"]]
            book.apply(
                [c[1:] for c in changes if c[0] == "buy"],
                [c[1:] for c in changes if c[0] == "sell"],
            )
            assert not book.crossed
        elif kind == "ticker" and msg["product_id"] in books:
            tickers += 1
            book = books[msg["product_id"]]
            bbo = (book.best_bid()[0], book.best_ask()[0])
            matches += bbo == (Decimal(msg["best_bid"]), Decimal(msg["best_ask"]))

    assert tickers == 107
    assert matches >= 100


def timed(seq: int, venue_time: str, events: list) -> str:
    return json.dumps(
        {"channel": "l2_data", "timestamp": venue_time, "sequence_num": seq, "events": events}
    )


def test_a_change_that_comes_later_than_the_venues_usual_delay_lags_by_the_difference():
    feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD"})
    feed.handle(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1.0)
    at = 1_700_000_000.0  # 2023-11-14T22:13:20Z, the venue's clock
    feed.handle(timed(1, "2023-11-14T22:13:20Z", [SNAPSHOT]), at + 0.25)
    book = feed.books["BTC-USD"]
    assert (book.lag, feed.clock_offset) == (0.0, 0.25)  # the first delay is the usual one

    feed.handle(
        timed(2, "2023-11-14T22:13:21Z", [l2("update", "BTC-USD", ("bid", "100", "2"))]), at + 4.25
    )

    assert book.lag == pytest.approx(3.0)  # 3.25 s on the way against the usual 0.25 s
    assert book.top()["lag"] == pytest.approx(3.0)  # what the engine publishes to the pages

    feed.handle(
        timed(3, "2023-11-14T22:13:22Z", [l2("update", "BTC-USD", ("bid", "100", "3"))]), at + 2.1
    )

    assert book.lag == 0.0 and feed.clock_offset == pytest.approx(0.1)  # faster: a new usual


def test_a_venue_lagging_since_its_first_stamped_frame_still_reads_as_lagging():
    feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD"})
    feed.handle(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1.0)

    # 1.5 s late from the start: no more than max_clock_offset is put down to the clocks.
    feed.handle(timed(1, "2023-11-14T22:13:20Z", [SNAPSHOT]), 1_700_000_000.0 + 1.5)

    assert feed.clock_offset == feed.max_clock_offset == 0.25
    assert feed.books["BTC-USD"].lag == pytest.approx(1.25)


def test_a_reset_forgets_the_usual_delay_so_the_next_connection_learns_its_own():
    feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USD"})
    feed.handle(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]), 1.0)
    feed.handle(timed(1, "2023-11-14T22:13:20Z", [SNAPSHOT]), 1_700_000_000.1)
    assert feed.clock_offset == pytest.approx(0.1)

    feed.reset("disconnected")

    assert feed.clock_offset is None


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_a_gap_resyncs_a_market_listed_under_another_product_id(which):
    """The desk's BTC-USD traded as Coinbase's BTC-USDC: the resync names the product."""
    with core.using(which):
        feed = CoinbaseFeed("coinbase", "wss://x", {"BTC-USD": "BTC-USDC"})
    snapshot = l2("snapshot", "BTC-USDC", ("bid", "100", "1"), ("offer", "101", "3"))
    feed.handle(frame(1, events=[snapshot]), 1.0)
    assert feed.books["BTC-USD"].valid

    feed.handle(frame(5, "heartbeats"), 2.0)

    assert not feed.books["BTC-USD"].valid and feed.stats.gaps == 1
    assert [json.loads(a.text) for a in feed.take_actions()] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USDC"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USDC"], "channel": "level2"},
    ]
