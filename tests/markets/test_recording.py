"""The recording format: frames written and read back, and played into a feed as they came."""

import pytest

from markets.recording import Recorder, apply_record, read_records
from markets.venues import VenueConfig, make_feed
from tests.recordings import REPLAY_SMALL

SYMBOLS = {"binance": {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"}}


def binance():
    config = VenueConfig("binance", ws_url="", symbols=SYMBOLS["binance"])
    return make_feed(config)


def records(venue: str, kind: str | None) -> list[dict]:
    return [r for r in read_records(REPLAY_SMALL) if r["venue"] == venue and r.get("kind") == kind]


def play(feed, record: dict):
    return apply_record(
        feed, record.get("kind"), record["frame"], record.get("url", ""), record["ts"]
    )


def test_a_rest_snapshot_record_syncs_its_market_and_the_frames_after_it_apply():
    feed = binance()
    changed = set()
    for record in (r for r in read_records(REPLAY_SMALL) if r["venue"] == "binance"):
        changed |= set(play(feed, record))

    assert changed == {"BTC-USD", "ETH-USD"}
    assert all(book.valid for book in feed.books.values())
    assert feed.books["BTC-USD"].best_bid() < feed.books["BTC-USD"].best_ask()


def test_a_frame_before_any_snapshot_asks_for_one_but_the_request_is_dropped():
    feed = binance()
    first_frame = records("binance", None)[0]

    assert play(feed, first_frame) == ()
    assert feed.actions == []  # the recording holds the snapshot that followed
    assert not any(book.valid for book in feed.books.values())


def test_what_we_sent_changes_nothing():
    feed = make_feed(VenueConfig("kraken", ws_url="", symbols={"BTC-USD": "BTC/USD"}))
    sent = records("kraken", "sent")[0]

    assert play(feed, sent) == ()
    assert feed.stats.frames == 0


def test_a_recorder_writes_what_read_records_reads_back(tmp_path):
    path = tmp_path / "feed.jsonl.gz"
    recorder = Recorder(path)
    recorder("kraken", '{"a":1}', 1.5, "recv", "wss://x")
    recorder("kraken", '{"b":2}', 2.5, "recv", "wss://x")
    recorder("binance", "{}", 3.0, "rest", "https://api/depth?symbol=BTCUSDT")
    recorder.close()

    got = list(read_records(path))

    assert [r["frame"] for r in got] == ['{"a":1}', '{"b":2}', "{}"]
    assert got[0]["url"] == "wss://x" and "url" not in got[1]  # the URL once per change
    assert (got[2]["kind"], got[2]["url"]) == ("rest", "https://api/depth?symbol=BTCUSDT")


def test_a_line_that_is_not_a_record_is_refused_with_its_line_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"venue": "kraken", "frame": "{}", "ts": 1}\nnot json\n')

    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON line"):
        list(read_records(path))
