"""Tests for the Kraken v2 feed: lexeme-exact checksums, resubscribe on mismatch, truncation."""

import json
import zlib
from decimal import Decimal

import pytest

from markets import core
from markets.venues.kraken.feed import KrakenFeed
from tests.markets.test_book import DOC_ASKS, DOC_BIDS  # the documentation example book


def levels_json(levels: list[tuple[str, str]]) -> str:
    # Written by hand: Kraken sends JSON numbers whose lexemes keep trailing zeros.
    return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"


def book_frame(kind: str, bids: list, asks: list, checksum: int, symbol: str = "BTC/USD") -> str:
    stamp = ',"timestamp":"2023-10-06T17:35:55.440295Z"' if kind == "update" else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}",'
        f'"bids":{levels_json(bids)},"asks":{levels_json(asks)},"checksum":{checksum}{stamp}}}]}}'
    )


def reference_checksum(bids: dict[str, str], asks: dict[str, str]) -> int:
    """Independent checksum: sort lexemes by value, top 10 asks up then top 10 bids down."""

    def part(levels: dict[str, str], reverse: bool) -> str:
        top = sorted(levels.items(), key=lambda kv: Decimal(kv[0]), reverse=reverse)[:10]
        return "".join(
            (p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")) for p, q in top
        )

    return zlib.crc32((part(asks, False) + part(bids, True)).encode())


CORES = [which for which in (core.REFERENCE, core.COMPILED) if which is not None]

DOC_SNAPSHOT = book_frame("snapshot", DOC_BIDS, DOC_ASKS, 3310070434)


@pytest.fixture
def feed() -> KrakenFeed:
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"}, depth=10)
    feed.handle(DOC_SNAPSHOT, 1.0)
    return feed


def test_subscribes_depth_25_on_the_wire_when_10_is_asked():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"}, depth=10)

    (message,) = [json.loads(m) for m in feed.subscribe_messages()]

    assert message["params"] == {
        "channel": "book",
        "symbol": ["BTC/USD", "ETH/USD"],
        "depth": 25,
        "snapshot": True,
    }


def test_subscribed_once_every_symbol_is_acked():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"})
    ack = (
        '{"method":"subscribe","result":{"channel":"book","depth":25,"symbol":"%s"},"success":true}'
    )

    feed.handle(ack % "BTC/USD", 1.0)
    assert not feed.subscribed
    feed.handle(ack % "ETH/USD", 1.0)

    assert feed.subscribed


def test_documentation_snapshot_verifies_its_checksum(feed):
    book = feed.books["BTC-USD"]

    assert book.valid
    assert feed.stats.checksum_ok == 1
    assert book.best_bid() == (Decimal("45283.5"), Decimal("0.1"))
    assert book.best_ask() == (Decimal("45285.2"), Decimal("0.001"))


def test_update_with_matching_checksum_is_applied(feed):
    bids = dict(DOC_BIDS) | {"45284.0": "2.50000000"}
    bids.pop("45283.5")
    update = [("45283.5", "0.00000000"), ("45284.0", "2.50000000")]

    changed = feed.handle(
        book_frame("update", update, [], reference_checksum(bids, dict(DOC_ASKS))), 2.0
    )

    assert changed == ["BTC-USD"]
    assert feed.books["BTC-USD"].valid
    assert feed.books["BTC-USD"].best_bid() == (Decimal("45284.0"), Decimal("2.5"))
    assert feed.stats.checksum_ok == 2


def test_integer_prices_and_sixteen_digit_quantities_keep_their_exact_text(feed):
    # A price sent as an integer literal, and a quantity a float cannot hold (16 digits): both
    # must reach the book and the checksum exactly as sent, or the CRC fails.
    bids = dict(DOC_BIDS) | {"45284": "12345678.12345678"}
    update = [("45284", "12345678.12345678")]

    feed.handle(book_frame("update", update, [], reference_checksum(bids, dict(DOC_ASKS))), 2.0)

    book = feed.books["BTC-USD"]
    assert feed.stats.checksum_failed == 0 and book.valid
    assert book.best_bid() == (Decimal("45284"), Decimal("12345678.12345678"))


def test_wrong_checksum_invalidates_the_book_and_resubscribes_that_symbol(feed):
    feed.handle(book_frame("update", [("45283.5", "0.20000000")], [], 12345), 2.0)

    book = feed.books["BTC-USD"]
    sent = [json.loads(a.text) for a in feed.take_actions()]
    assert not book.valid and book.invalid_reason == "checksum mismatch"
    assert feed.stats.checksum_failed == 1
    assert [(m["method"], m["params"]["symbol"], m["params"]["depth"]) for m in sent] == [
        ("unsubscribe", ["BTC/USD"], 25),
        ("subscribe", ["BTC/USD"], 25),
    ]


def test_updates_wait_for_the_fresh_snapshot_after_a_mismatch(feed):
    feed.handle(book_frame("update", [("45283.5", "0.20000000")], [], 12345), 2.0)
    feed.handle(book_frame("update", [("45283.5", "0.30000000")], [], 1), 2.1)
    assert feed.stats.checksum_failed == 1

    feed.handle(DOC_SNAPSHOT, 3.0)

    assert feed.books["BTC-USD"].valid


@pytest.mark.parametrize(
    "text",
    [
        "{bad json",
        '"a string"',
        '{"foo": 1}',
        book_frame("update", [("NaN", "1.0")], [], 1),  # not JSON: names nothing readable
        book_frame("update", [("45283.5", "1.0")], [], 1, symbol="DOGE/USD"),
    ],
)
def test_malformed_frames_naming_no_subscribed_symbol_leave_the_book_unchanged(feed, text):
    before = feed.books["BTC-USD"].top(50)

    changed = feed.handle(text, 2.0)

    assert changed == ()
    assert feed.stats.malformed == 1
    assert feed.books["BTC-USD"].top(50) == before
    assert feed.books["BTC-USD"].valid and feed.take_actions() == []


@pytest.mark.parametrize(
    "text",
    [
        book_frame("update", [("-45283.5", "1.0")], [], 1),
        book_frame("update", [("45283.5", "1e400")], [], 1),
        book_frame("bogus", [("45283.5", "1.0")], [], 1),
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1}]}]}',
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[]}]}',
    ],
)
def test_malformed_frames_naming_a_symbol_are_counted_and_resync_its_book(feed, text):
    book = feed.books["BTC-USD"]
    before = (list(book.bids()), list(book.asks()))

    changed = feed.handle(text, 2.0)

    sent = [json.loads(a.text) for a in feed.take_actions()]
    assert changed == ()
    assert feed.stats.malformed == 1
    assert (list(book.bids()), list(book.asks())) == before
    assert not book.valid and book.invalid_reason == "malformed frame"
    assert [(m["method"], m["params"]["symbol"]) for m in sent] == [
        ("unsubscribe", ["BTC/USD"]),
        ("subscribe", ["BTC/USD"]),
    ]


def deep_book_feed(which) -> tuple[KrakenFeed, dict, dict]:
    """A feed on `which` core holding a valid 25-level book (the wire depth)."""
    with core.using(which):
        feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"})
    bids = {f"{100 - i}.0": "1.00000000" for i in range(25)}
    asks = {f"{101 + i}.0": "1.00000000" for i in range(25)}
    snapshot = book_frame(
        "snapshot", list(bids.items()), list(asks.items()), reference_checksum(bids, asks)
    )
    feed.handle(snapshot, 1.0)
    assert feed.books["BTC-USD"].valid
    return feed, bids, asks


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_a_lost_frame_below_the_checksummed_top_10_resyncs_the_book(which):
    feed, bids, asks = deep_book_feed(which)
    after = {p: q for p, q in bids.items() if p != "86.0"}
    # The venue removes bid level 15 and adds another; a number the parser refuses loses the
    # frame. The checksum of the next frame covers only the top 10, so it would not tell.
    lost = [("86.0", "0.00000000"), ("85.5", "1e-8")]
    feed.handle(book_frame("update", lost, [], reference_checksum(after, asks)), 2.0)
    after["100.0"] = "2.00000000"
    top_changed = [("100.0", "2.00000000")]
    feed.handle(book_frame("update", top_changed, [], reference_checksum(after, asks)), 3.0)

    book = feed.books["BTC-USD"]
    assert not book.valid and book.invalid_reason == "malformed frame"
    assert feed.stats.malformed == 1 and feed.stats.checksum_failed == 0
    assert [json.loads(a.text)["params"]["symbol"] for a in feed.take_actions()] == [
        ["BTC/USD"],
        ["BTC/USD"],
    ]


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_a_lost_frame_whose_symbols_cannot_be_read_resyncs_every_book(which):
    feed, _, _ = deep_book_feed(which)

    feed.handle('{"channel":"book","type":"update","data":[{"bids":[]}]}', 2.0)

    assert not feed.books["BTC-USD"].valid
    assert [json.loads(a.text)["params"]["symbol"] for a in feed.take_actions()] == [
        ["BTC/USD"],
        ["BTC/USD"],
        ["ETH/USD"],
        ["ETH/USD"],
    ]


def test_book_is_truncated_to_the_wire_depth_after_each_update():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"}, depth=10)
    bids = {f"{100 - i}.0": "1.00000000" for i in range(25)}
    asks = {f"{101 + i}.0": "1.00000000" for i in range(25)}
    feed.handle(
        book_frame(
            "snapshot", list(bids.items()), list(asks.items()), reference_checksum(bids, asks)
        ),
        1.0,
    )

    inserted = ("99.5", "2.00000000")
    after = dict(bids) | dict([inserted])
    del after["76.0"]  # the 26th bid falls out of the subscribed window
    feed.handle(book_frame("update", [inserted], [], reference_checksum(after, asks)), 2.0)

    book = feed.books["BTC-USD"]
    assert book.valid and feed.stats.checksum_ok == 2
    assert len(list(book.bids())) == 25
    assert list(book.bids())[-1][0] == Decimal("77.0")


def test_status_heartbeat_pong_and_ack_frames_are_not_malformed():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"})
    frames = [
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        '"connection_id":18266300427528990701,"system":"online","version":"2.0.4"}]}',
        '{"channel":"heartbeat"}',
        '{"method":"pong","req_id":101,"time_in":"x","time_out":"y"}',
        '{"method":"unsubscribe","result":{"channel":"book","depth":25,"symbol":"BTC/USD"},'
        '"success":true}',
    ]

    for text in frames:
        assert feed.handle(text, 1.0) == ()

    assert feed.stats.malformed == 0 and feed.stats.errors == []


def test_failed_subscription_is_kept_as_a_venue_error():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"})

    feed.handle(
        '{"error":"Currency pair not supported XBT/USD","method":"subscribe",'
        '"success":false,"symbol":"XBT/USD"}',
        1.0,
    )

    assert "not supported" in feed.stats.errors[0]
    assert not feed.subscribed


def test_ping_message_is_the_application_ping():
    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"})

    assert json.loads(feed.ping_message())["method"] == "ping"


def test_a_flood_of_malformed_frames_is_counted_whole_and_logged_now_and_then(caplog, monkeypatch):
    from markets.venues import feed as feeds

    feed = KrakenFeed("kraken", "wss://x", {"BTC-USD": "BTC/USD"})
    unlisted = (
        '{"channel":"book","type":"update","data":[{"symbol":"XDG/USD","bids":[],'
        '"asks":[{"price":0.15,"qty":2.0}],"checksum":1,"timestamp":"2026-12-03T06:20:21Z"}]}'
    )
    with caplog.at_level("WARNING", logger="markets.venues.feed"):
        for _ in range(1000):  # a replay of a market the database does not list
            feed.handle(unlisted, 1.0)
        logged_in_the_flood = len(caplog.records)
        monkeypatch.setattr(feed, "_malformed_log_at", float("-inf"))  # MALFORMED_LOG_S on
        feed.handle(unlisted, 1.0)

    assert feed.stats.malformed == 1001
    assert logged_in_the_flood == 1 and feeds.MALFORMED_LOG_S >= 1
    assert "malformed frame (KeyError('XDG/USD'))" in caplog.records[0].getMessage()
    assert caplog.records[1].getMessage().endswith("(and 999 more since the last one)")
