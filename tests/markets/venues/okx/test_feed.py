"""Tests for the OKX `books` feed: the real recording's checksums, resync on a bad one or a gap."""

import json
import zlib
from decimal import Decimal

import pytest

from markets.venues.okx.feed import OkxFeed, checksum
from tests.recordings import received

RECORDED = {"BTC-USDT": "BTC-USDT", "UNI-USD": "UNI-USD-SWAP", "BTC-USD": "BTC-USD-220527"}
RECORDED_BY_ID = {v: k for k, v in RECORDED.items()}


def book_frame(action: str, bids: list, asks: list, crc: int, **seq: int) -> str:
    data = {
        "asks": [[p, q, "0", "1"] for p, q in asks],
        "bids": [[p, q, "0", "1"] for p, q in bids],
        "ts": "1652459225453",
        "checksum": crc,
        **seq,
    }
    return json.dumps(
        {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [data]}
    )


def crc_of(bids: list, asks: list) -> int:
    feed = OkxFeed("okx", "wss://x", {"BTC-USDT": "BTC-USDT"})
    feed.handle(book_frame("snapshot", bids, asks, 0), 1.0)
    return checksum(feed.books["BTC-USDT"])


BIDS = [("30000.1", "1.50"), ("30000.0", "0.00100000")]
ASKS = [("30000.2", "2"), ("30000.3", "0.5"), ("30000.4", "3.1")]


@pytest.fixture
def feed() -> OkxFeed:
    feed = OkxFeed("okx", "wss://x", {"BTC-USDT": "BTC-USDT"})
    feed.handle(book_frame("snapshot", BIDS, ASKS, crc_of(BIDS, ASKS), seqId=10, prevSeqId=-1), 1.0)
    return feed


def test_every_checksum_of_the_recording_verifies():
    feed = OkxFeed("okx", "wss://ws.okx.com:8443/ws/v5/public", RECORDED)

    for ts, text in received("OKX.ws.1.0"):
        feed.handle(text, ts)

    assert feed.stats.checksum_ok == 290
    assert feed.stats.checksum_failed == feed.stats.malformed == feed.stats.resyncs == 0
    assert feed.subscribed
    assert all(book.valid and not book.crossed for book in feed.books.values())


def test_the_checksum_interleaves_bid_and_ask_and_goes_on_with_the_longer_side():
    text = "30000.1:1.50:30000.2:2:30000.0:0.00100000:30000.3:0.5:30000.4:3.1"
    unsigned = zlib.crc32(text.encode())
    assert crc_of(BIDS, ASKS) == (unsigned - 2**32 if unsigned >= 2**31 else unsigned)


def test_a_corrupted_checksum_invalidates_the_book_and_resubscribes_it():
    feed = OkxFeed("okx", "wss://x", RECORDED)
    frames = received("OKX.ws.1.0")
    corrupted = next(i for i, (_, t) in enumerate(frames) if '"action":"update"' in t)
    ts, text = frames[corrupted]
    crc = json.loads(text)["data"][0]["checksum"]
    frames[corrupted] = (ts, text.replace(f'"checksum":{crc}', f'"checksum":{crc + 1}'))

    for ts, text in frames[: corrupted + 1]:
        feed.handle(text, ts)

    market = RECORDED_BY_ID[json.loads(text)["arg"]["instId"]]
    assert not feed.books[market].valid
    assert feed.books[market].invalid_reason == "checksum mismatch"
    sent = [json.loads(action.text) for action in feed.take_actions()]
    args = [{"channel": "books", "instId": RECORDED[market]}]
    assert sent == [{"op": "unsubscribe", "args": args}, {"op": "subscribe", "args": args}]


def test_updates_wait_for_the_new_snapshot_after_a_mismatch(feed):
    feed.handle(book_frame("update", [("30000.1", "2")], [], 12345, seqId=11, prevSeqId=10), 2.0)
    feed.handle(book_frame("update", [("30000.1", "3")], [], 1, seqId=12, prevSeqId=11), 2.1)
    assert feed.stats.checksum_failed == 1 and not feed.books["BTC-USDT"].valid

    feed.handle(book_frame("snapshot", BIDS, ASKS, crc_of(BIDS, ASKS), seqId=20, prevSeqId=-1), 3.0)

    assert feed.books["BTC-USDT"].valid and feed.books["BTC-USDT"].sequence == 20


def test_an_update_that_does_not_continue_the_sequence_resyncs(feed):
    bids = [("30000.1", "2"), BIDS[1]]

    changed = feed.handle(
        book_frame("update", [("30000.1", "2")], [], crc_of(bids, ASKS), seqId=13, prevSeqId=12),
        2.0,
    )

    book = feed.books["BTC-USDT"]
    assert changed == ["BTC-USDT"]
    assert not book.valid and book.invalid_reason == "gap 10 -> 12"
    assert feed.stats.gaps == 1
    assert book.best_bid() == (Decimal("30000.1"), Decimal("1.50"))  # the update was withheld


def test_an_update_that_continues_the_sequence_is_applied(feed):
    bids = [("30000.1", "2"), BIDS[1]]

    feed.handle(
        book_frame("update", [("30000.1", "2")], [], crc_of(bids, ASKS), seqId=11, prevSeqId=10),
        2.0,
    )

    book = feed.books["BTC-USDT"]
    assert book.valid and book.sequence == 11 and feed.stats.checksum_ok == 2
    assert book.best_bid() == (Decimal("30000.1"), Decimal("2"))


def test_a_crossed_book_resyncs_even_with_a_good_checksum(feed):
    bids = [("30000.3", "1"), *BIDS]

    feed.handle(book_frame("update", [("30000.3", "1")], [], crc_of(bids, ASKS)), 2.0)

    assert feed.books["BTC-USDT"].invalid_reason == "crossed"
    assert len(feed.take_actions()) == 2


@pytest.mark.parametrize(
    "text",
    [
        "{bad json",
        '"a string"',
        book_frame("update", [("NaN", "1")], [], 1),
        book_frame("update", [("-1", "1")], [], 1),
        book_frame("update", [("30000.1", "1e400")], [], 1),
        book_frame("update", [("30000.1", "1")], [], "1"),
        book_frame("bogus", [], [], 1),
        book_frame("update", [], [], 1).replace('"BTC-USDT"', '"DOGE-USDT"'),
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[]}',
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"bids":[]}]}',
    ],
)
def test_malformed_frames_are_counted_and_leave_the_book_unchanged(feed, text):
    before = feed.books["BTC-USDT"].top(50)

    assert feed.handle(text, 2.0) == ()

    assert feed.stats.malformed == 1
    assert feed.books["BTC-USDT"].top(50) == before and feed.books["BTC-USDT"].valid


def test_pong_acks_and_other_channels_are_not_malformed():
    feed = OkxFeed("okx", "wss://x", {"BTC-USDT": "BTC-USDT"})

    for text in (
        "pong",
        '{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}',
    ):
        assert feed.handle(text, 1.0) == ()

    assert feed.subscribed and feed.stats.malformed == 0 and feed.stats.ignored == 1


def test_an_error_event_is_kept_as_a_venue_error():
    feed = OkxFeed("okx", "wss://x", {"BTC-USDT": "BTC-USDT"})

    feed.handle('{"event":"error","code":"60018","msg":"Wrong URL or channel"}', 1.0)

    assert "60018" in feed.stats.errors[0] and not feed.subscribed


def test_subscribes_books_for_every_instrument_and_pings_with_text():
    feed = OkxFeed("okx", "wss://x", RECORDED)

    (message,) = [json.loads(m) for m in feed.subscribe_messages()]

    assert message == {
        "op": "subscribe",
        "args": [{"channel": "books", "instId": i} for i in RECORDED.values()],
    }
    assert feed.ping_message() == "ping"


def test_the_recorded_subscription_names_the_book_instruments_only():
    sent = [
        '{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},'
        '{"channel":"books","instId":"BTC-USDT"},{"channel":"books","instId":"UNI-USD-SWAP"}]}'
    ]

    assert OkxFeed.recorded_subscription(sent, "wss://x") == (["BTC-USDT", "UNI-USD-SWAP"], {})
