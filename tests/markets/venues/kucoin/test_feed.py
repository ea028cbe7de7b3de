"""Tests for the KuCoin level2 feed: the real recording calibrated against its REST snapshots,
gaps, the change rules (price "0", size "0", the partial snapshot's horizon), the handshake."""

import json
from decimal import Decimal

import pytest

from markets.venues.events import FetchSnapshot, Reconnect, Send
from markets.venues.kucoin.feed import KucoinFeed
from tests.recordings import CRYPTOFEED, received

RECORDED = ["EQZ-BTC", "ANKR-BTC", "SNX-BTC", "FET-BTC", "BCHSV-USDT", "NRG-BTC", "CAPP-BTC"]
RECORDED += ["DAPPT-BTC", "COV-BTC"]  # the nine symbols with a snapshot in KUCOIN.http.0.0


def recorded_snapshots(feed: KucoinFeed) -> dict[str, tuple[float, str]]:
    snapshots = {}
    for line in (CRYPTOFEED / "KUCOIN.http.0.0").read_text().splitlines():
        if line.strip():
            url, _, answer = line.partition(" -> ")
            stamp, _, body = answer.partition(": ")
            snapshots[feed.snapshot_market(url)] = (float(stamp), body)
    return snapshots


def recording_feed() -> KucoinFeed:
    """A feed of the recording's symbols, synced to full snapshots as the recording's were."""
    symbols = {s: s for s in RECORDED}
    return KucoinFeed("kucoin", "wss://x", symbols, "https://api.kucoin.com", snapshot_depth=None)


def play_recording(feed: KucoinFeed) -> tuple[set[str], int]:
    """Feed KUCOIN.ws.1.0 to `feed`, each snapshot at its recorded time: the markets loaded,
    and how many times a book read crossed after a frame."""
    snapshots = recorded_snapshots(feed)
    loaded, crossed = set(), 0
    for ts, text in received("KUCOIN.ws.1.0"):
        feed.handle(text, ts)
        for market, (stamp, body) in snapshots.items():
            if market not in loaded and stamp <= ts:  # each snapshot as the recording got it
                loaded.add(market)
                feed.handle_snapshot(market, body, stamp)
        crossed += sum(book.crossed for book in feed.books.values())
    return loaded, crossed


def message(first: int, last: int, bids=(), asks=(), symbol: str = "BTC-USDT") -> str:
    data = {
        "sequenceStart": first,
        "sequenceEnd": last,
        "symbol": symbol,
        "changes": {"asks": [list(a) for a in asks], "bids": [list(b) for b in bids]},
        "time": 1700000000000,
    }
    topic = f"/market/level2:{symbol}"
    return json.dumps(
        {"type": "message", "topic": topic, "subject": "trade.l2update", "data": data}
    )


def snapshot(sequence: int, bids, asks) -> str:
    data = {"sequence": str(sequence), "time": 1, "bids": bids, "asks": asks}
    return json.dumps({"code": "200000", "data": data})


@pytest.fixture
def feed() -> KucoinFeed:
    return KucoinFeed("kucoin", "wss://x", {"BTC-USDT": "BTC-USDT"}, "https://api.kucoin.com")


@pytest.fixture
def synced(feed) -> KucoinFeed:
    feed.handle(message(11, 11, bids=[("100", "1", "11")]), 1.0)
    feed.handle_snapshot("BTC-USDT", snapshot(10, [["99", "2"]], [["101", "3"]]), 1.1)
    feed.take_actions()
    return feed


def test_the_recording_syncs_every_symbol_with_no_gap_and_is_never_crossed():
    feed = recording_feed()
    loaded, crossed = play_recording(feed)

    assert loaded == set(RECORDED)
    assert all(book.valid for book in feed.books.values())
    assert feed.stats.gaps == 0 and feed.stats.malformed == 0 and crossed == 0
    assert feed.stats.book_updates > 3000
    assert feed.stats.resyncs == len(RECORDED)  # one snapshot each, never another


def test_the_first_message_is_buffered_and_asks_for_the_public_snapshot(feed):
    feed.handle(message(11, 11, bids=[("100", "1", "11")]), 1.0)

    (action,) = feed.take_actions()
    assert action == FetchSnapshot(
        "BTC-USDT",
        "https://api.kucoin.com/api/v1/market/orderbook/level2_100?symbol=BTC-USDT",
    )
    assert not feed.books["BTC-USDT"].valid


def test_buffered_changes_after_the_snapshot_sequence_are_applied(synced):
    book = synced.books["BTC-USDT"]

    assert book.valid and book.sequence == 11
    assert book.best_bid() == (Decimal("100"), Decimal("1"))


def test_changes_at_or_below_the_book_sequence_are_skipped_within_a_message(synced):
    synced.handle(message(10, 12, bids=[("98", "5", "10")], asks=[("102", "1", "12")]), 2.0)

    book = synced.books["BTC-USDT"]
    assert Decimal("98") not in dict(book.bids())
    assert dict(book.asks())[Decimal("102")] == Decimal("1") and book.sequence == 12


def test_a_dropped_message_invalidates_the_book_and_resyncs(synced):
    changed = synced.handle(message(13, 13, bids=[("100", "2", "13")]), 2.0)

    book = synced.books["BTC-USDT"]
    assert changed == ["BTC-USDT"]
    assert not book.valid and book.invalid_reason == "gap 11 -> 13"
    assert synced.stats.gaps == 1
    assert [type(a) for a in synced.take_actions()] == [FetchSnapshot]

    synced.handle_snapshot("BTC-USDT", snapshot(12, [["99", "2"]], [["101", "3"]]), 2.5)

    assert book.valid and book.sequence == 13
    assert book.best_bid() == (Decimal("100"), Decimal("2"))  # the buffered message applied


def test_price_zero_only_advances_the_sequence_and_size_zero_deletes(synced):
    synced.handle(message(12, 13, bids=[("0", "0", "12"), ("100", "0", "13")]), 2.0)

    book = synced.books["BTC-USDT"]
    assert book.valid and book.sequence == 13
    assert book.best_bid() == (Decimal("99"), Decimal("2"))


def test_a_stale_message_is_ignored(synced):
    synced.handle(message(5, 11, bids=[("50", "1", "11")]), 2.0)

    assert synced.books["BTC-USDT"].valid
    assert Decimal("50") not in dict(synced.books["BTC-USDT"].bids())


def test_a_crossed_book_is_invalidated_and_resynced(synced):
    synced.handle(message(12, 12, bids=[("101", "1", "12")]), 2.0)

    assert synced.books["BTC-USDT"].invalid_reason == "crossed"
    assert [type(a) for a in synced.take_actions()] == [FetchSnapshot]


def test_changes_beyond_a_partial_snapshots_worst_level_are_not_tracked():
    feed = KucoinFeed("kucoin", "wss://x", {"BTC-USDT": "BTC-USDT"}, "https://k", snapshot_depth=2)
    feed.handle(message(11, 11), 1.0)
    feed.handle_snapshot("BTC-USDT", snapshot(10, [["99", "1"], ["98", "1"]], [["101", "1"]]), 1.0)

    feed.handle(message(12, 13, bids=[("97", "5", "12")], asks=[("105", "1", "13")]), 2.0)

    book = feed.books["BTC-USDT"]
    assert [p for p, _ in book.bids()] == [Decimal("99"), Decimal("98")]  # 97 is past the horizon
    assert [p for p, _ in book.asks()] == [Decimal("101"), Decimal("105")]  # asks were whole


@pytest.mark.parametrize(
    "text",
    [
        "{bad json",
        '"text"',
        message(12, 12, bids=[("NaN", "1", "12")]),
        message(12, 12, bids=[("-1", "1", "12")]),
        message(12, 12, bids=[("100", "1e400", "12")]),
        message(12, 12, bids=[("100", "1")]),
        message(12, 11),
        message(12, 12, symbol="DOGE-USDT"),
        '{"type":"message","subject":"trade.l2update","data":{"symbol":"BTC-USDT"}}',
    ],
)
def test_malformed_frames_are_counted_and_leave_the_book_unchanged(synced, text):
    before = synced.books["BTC-USDT"].top(50)

    assert synced.handle(text, 2.0) == ()

    assert synced.stats.malformed == 1
    assert synced.books["BTC-USDT"].top(50) == before and synced.books["BTC-USDT"].valid


def test_an_unusable_snapshot_is_counted_and_fetched_again(feed):
    feed.handle(message(11, 11), 1.0)
    feed.take_actions()

    feed.handle_snapshot("BTC-USDT", '{"code":"400100","msg":"symbol not exists"}', 1.1)

    assert feed.stats.malformed == 1 and not feed.books["BTC-USDT"].valid
    assert [type(a) for a in feed.take_actions()] == [FetchSnapshot]


def test_the_handshake_takes_the_token_and_endpoint_and_pings_at_least_as_often_as_asked(feed):
    bullet = {
        "code": "200000",
        "data": {
            "token": "tok-1",
            "instanceServers": [
                {
                    "endpoint": "wss://ws-api-spot.kucoin.com/",
                    "pingInterval": 18000,
                    "pingTimeout": 10000,
                    "encrypt": True,
                    "protocol": "websocket",
                }
            ],
        },
    }

    assert feed.handshake_request() == ("POST", "https://api.kucoin.com/api/v1/bullet-public")
    feed.handle_handshake(json.dumps(bullet))

    assert feed.url.startswith("wss://ws-api-spot.kucoin.com/?token=tok-1&connectId=")
    assert feed.ping_interval == 5.0  # under the 18 s asked: a pong then proves the socket

    bullet["data"]["instanceServers"][0]["pingInterval"] = 2000
    feed.handle_handshake(json.dumps(bullet))
    assert feed.ping_interval == 2.0


@pytest.mark.parametrize(
    "body", ["<html>", '{"code":"200000","data":{}}', '{"data":{"token":"t","instanceServers":[]}}']
)
def test_an_unusable_handshake_answer_raises(feed, body):
    with pytest.raises(ValueError, match="unusable bullet answer"):
        feed.handle_handshake(body)


def test_subscribes_after_the_welcome_and_is_live_once_acked():
    symbols = {f"S{i}-USDT": f"S{i}-USDT" for i in range(150)}
    feed = KucoinFeed("kucoin", "wss://x", symbols, "https://k")
    assert feed.subscribe_messages() == []

    feed.handle('{"id":"abc","type":"welcome"}', 1.0)
    sent = [json.loads(a.text) for a in feed.take_actions() if isinstance(a, Send)]

    assert [len(m["topic"].split(":")[1].split(",")) for m in sent] == [100, 50]
    assert not feed.subscribed
    for m in sent:
        feed.handle(json.dumps({"id": m["id"], "type": "ack"}), 1.1)
    assert feed.subscribed


def test_a_venue_error_such_as_an_expired_token_reconnects(synced):
    synced.handle('{"type":"error","code":401,"data":"token is expired"}', 2.0)

    assert synced.take_actions() == [Reconnect("venue error 401")]
    assert "token is expired" in synced.stats.errors[0]


def test_pongs_and_other_topics_are_not_malformed(synced):
    synced.handle('{"id":"3","type":"pong"}', 2.0)
    synced.handle(
        '{"type":"message","topic":"/market/ticker:BTC-USDT","subject":"trade.ticker","data":{}}',
        2.0,
    )

    assert synced.stats.malformed == 0 and synced.stats.ignored == 1
    assert json.loads(synced.ping_message())["type"] == "ping"


def test_the_recorded_subscription_names_the_level2_symbols():
    sent = [
        '{"id":1,"type":"subscribe","topic":"/market/match:EQZ-BTC","response":true}',
        '{"id":1,"type":"subscribe","topic":"/market/level2:EQZ-BTC,LTX-USDT","response":true}',
    ]

    assert KucoinFeed.recorded_subscription(sent, "wss://x") == (["EQZ-BTC", "LTX-USDT"], {})
