"""Tests for the Binance feed: the REST + diff-stream sync procedure on real recorded traffic."""

import json
from decimal import Decimal

import pytest

from markets.venues.binance.feed import BinanceFeed
from markets.venues.events import FetchSnapshot
from tests.recordings import CRYPTOFEED

SYMBOLS = {"NKN-USDT": "NKNUSDT", "BLZ-ETH": "BLZETH", "LRC-BTC": "LRCBTC", "RUNE-EUR": "RUNEEUR"}


def recorded_frames() -> list[tuple[float, str, str]]:
    """Return (ts, kind, payload) of the recorded REST bodies and ws frames, in time order."""
    frames = []
    for line in (CRYPTOFEED / "BINANCE.http.0.0").read_text().splitlines():
        if " -> " in line:
            url, rest = line.split(" -> ", 1)
            ts, body = rest.split(": ", 1)
            frames.append((float(ts), "rest " + url.split("symbol=")[1].split("&")[0], body))
    for line in (CRYPTOFEED / "BINANCE.ws.1.0").read_text().splitlines():
        if line and line[0].isdigit():
            ts, text = line.split(": ", 1)
            frames.append((float(ts), "ws", text))
    return sorted(frames, key=lambda f: f[0])


def new_feed() -> BinanceFeed:
    return BinanceFeed(
        "binance", "wss://stream.binance.com:9443", SYMBOLS, "https://api.binance.com"
    )


def test_recording_syncs_every_symbol_and_matches_every_book_ticker():
    feed = new_feed()
    markets = {v: k for k, v in SYMBOLS.items()}
    tickers: dict[tuple[str, int], dict] = {}
    results: dict[tuple[str, int], bool] = {}

    for ts, kind, payload in recorded_frames():
        if kind.startswith("rest"):
            feed.handle_snapshot(markets[kind.split()[1]], payload, ts)
            continue
        feed.handle(payload, ts)
        data = json.loads(payload)["data"]
        if data.get("e") is None and "u" in data:  # bookTicker: it may precede the diff batch
            tickers[(data["s"], data["u"])] = data
        book = feed.books[markets[data["s"]]]
        key = (data["s"], book.sequence)
        if book.valid and key in tickers and key not in results:
            ticker = tickers[key]
            results[key] = (book.best_bid(), book.best_ask()) == (
                (Decimal(ticker["b"]), Decimal(ticker["B"])),
                (Decimal(ticker["a"]), Decimal(ticker["A"])),
            )

    assert all(book.valid for book in feed.books.values())
    assert feed.stats.gaps == 0 and feed.stats.malformed == 0
    assert feed.stats.book_updates == 172
    assert (len(results), sum(results.values())) == (26, 26)


def depth(first: int, last: int, bids=(), asks=(), symbol="NKNUSDT") -> str:
    data = {"e": "depthUpdate", "E": 1, "s": symbol, "U": first, "u": last, "b": bids, "a": asks}
    return json.dumps({"stream": "nknusdt@depth@100ms", "data": data})


SNAPSHOT = json.dumps({"lastUpdateId": 100, "bids": [["1.00", "5"]], "asks": [["1.10", "5"]]})


@pytest.fixture
def synced() -> BinanceFeed:
    feed = new_feed()
    feed.handle(depth(95, 100), 1.0)
    feed.take_actions()
    feed.handle_snapshot("NKN-USDT", SNAPSHOT, 1.5)
    feed.handle(depth(101, 102, bids=[["1.01", "2"]]), 2.0)
    return feed


def test_first_event_requests_a_snapshot_and_is_buffered():
    feed = new_feed()

    feed.handle(depth(95, 101, bids=[["1.05", "1"]]), 1.0)

    assert feed.take_actions() == [
        FetchSnapshot("NKN-USDT", "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000")
    ]
    assert not feed.books["NKN-USDT"].valid
    feed.handle_snapshot("NKN-USDT", SNAPSHOT, 1.5)
    assert feed.books["NKN-USDT"].best_bid() == (Decimal("1.05"), Decimal("1"))
    assert feed.books["NKN-USDT"].sequence == 101


def test_snapshot_older_than_the_first_event_is_fetched_again():
    feed = new_feed()
    feed.handle(depth(150, 151), 1.0)
    feed.take_actions()

    feed.handle_snapshot("NKN-USDT", SNAPSHOT, 1.5)

    assert not feed.books["NKN-USDT"].valid
    assert [type(a) for a in feed.take_actions()] == [FetchSnapshot]


def test_skipped_update_id_invalidates_and_requests_a_new_snapshot(synced):
    synced.handle(depth(104, 105, bids=[["1.02", "1"]]), 3.0)

    assert not synced.books["NKN-USDT"].valid
    assert synced.stats.gaps == 1
    assert [a.market for a in synced.take_actions()] == ["NKN-USDT"]
    assert synced.books["NKN-USDT"].best_bid() == (Decimal("1.01"), Decimal("2"))


def test_stale_event_is_ignored(synced):
    synced.handle(depth(90, 99, bids=[["1.09", "1"]]), 3.0)

    assert synced.books["NKN-USDT"].best_bid() == (Decimal("1.01"), Decimal("2"))
    assert synced.books["NKN-USDT"].valid


def test_crossed_book_is_invalidated_and_resynced(synced):
    synced.handle(depth(103, 103, bids=[["1.20", "1"]]), 3.0)

    assert synced.books["NKN-USDT"].invalid_reason == "crossed"
    assert [type(a) for a in synced.take_actions()] == [FetchSnapshot]


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        '{"stream": "x"}',
        depth(103, 103, bids=[["NaN", "1"]]),
        depth(103, 103, bids=[["-1", "1"]]),
        depth(103, 103, asks=[["1.2", "1e99"]]),
        depth(104, 103),
        depth(103, 103, symbol="DOGEUSDT"),
        depth(103, 103, bids=[["1.02"]]),
        json.dumps({"stream": "a", "data": {"e": "depthUpdate", "s": "NKNUSDT"}}),
    ],
)
def test_malformed_frames_are_counted_and_leave_the_book_unchanged(synced, text):
    before = synced.books["NKN-USDT"].top(50)

    assert synced.handle(text, 3.0) == ()

    assert synced.stats.malformed == 1
    assert synced.books["NKN-USDT"].top(50) == before


def test_combined_stream_url_names_every_depth_stream():
    assert new_feed().url == (
        "wss://stream.binance.com:9443/stream?streams=nknusdt@depth@100ms/blzeth@depth@100ms"
        "/lrcbtc@depth@100ms/runeeur@depth@100ms"
    )
