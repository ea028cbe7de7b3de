"""`replay` runs a recording through the engine's own path and reports exact, stable figures."""

import gzip
import json
from collections import defaultdict
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bench import hot_path
from markets import core
from markets.recording import read_records
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory
from tests.recordings import REPLAY_SMALL
from trading.engine.pipeline import Limits
from trading.engine.replay import Replay, build_venues, recorded_venues

RECORDING = REPLAY_SMALL
FEES = ["--taker-fee-bps", "coinbase=10", "--taker-fee-bps", "kraken=10"]
FEES += ["--taker-fee-bps", "binance=10"]
VENUE_SYMBOLS = {
    "coinbase": {"BTC-USD": "BTC-USD", "ETH-USD": "ETH-USD"},
    "kraken": {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"},
    "binance": {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"},
}


def replay(*args: str) -> tuple[list[dict], dict]:
    out = StringIO()
    call_command("replay", str(RECORDING), "--json", *args, stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return lines[:-1], lines[-1]["summary"]


@pytest.fixture
def listed(db):
    for slug, markets in VENUE_SYMBOLS.items():
        exchange = ExchangeFactory(slug=slug)
        for market, venue_symbol in markets.items():
            ListingFactory(
                exchange=exchange,
                market=MarketFactory(symbol=market),
                venue_symbol=venue_symbol,
                lot_size=Decimal("0.00001"),
            )


def recorded_frames() -> list[dict]:
    with gzip.open(RECORDING, "rt") as file:
        return [json.loads(line) for line in file]


def test_replay_is_stable_for_a_fixed_file(listed):
    first_events, first = replay(*FEES)
    second_events, second = replay(*FEES)

    for summary in (first, second):
        summary.pop("elapsed_s"), summary.pop("frames_per_s")
    assert first_events == second_events
    assert first == second
    assert first["opportunities_opened"] > 0


def test_replay_counts_every_received_frame_and_no_checksum_fails(listed):
    _, summary = replay(*FEES)

    received = [r for r in recorded_frames() if "kind" not in r]
    assert summary["frames"] == len(received)
    assert summary["checksum_ok"] > 0
    assert (summary["checksum_failed"], summary["gaps"], summary["malformed"]) == (0, 0, 0)


def test_replay_events_are_consistent_lifecycles(listed):
    events, summary = replay(*FEES)

    opened = [e for e in events if e["event"] == "open"]
    assert len(opened) == summary["opportunities_opened"]
    live: set[tuple] = set()
    for event in events:
        key = (event["market"], event["buy_venue"], event["sell_venue"])
        if event["event"] == "open":
            assert key not in live
            live.add(key)
        else:
            assert key in live
        if event["event"] == "close":
            live.remove(key)
        net, gross, fees = (Decimal(event[k]) for k in ("net_profit", "gross_profit", "fees"))
        assert net == gross - fees
        assert Decimal(event["size"]) % Decimal("0.00001") == 0
    assert live == {(o["market"], o["buy_venue"], o["sell_venue"]) for o in summary["open_at_end"]}


def test_books_at_end_match_an_independent_rebuild_of_the_coinbase_frames(listed):
    _, summary = replay(*FEES)

    books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    for record in recorded_frames():
        if record["venue"] != "coinbase" or "kind" in record:
            continue
        message = json.loads(record["frame"])
        for event in message.get("events", []) if message.get("channel") == "l2_data" else []:
            book = books.setdefault(event["product_id"], {"bid": {}, "offer": {}})
            if event["type"] == "snapshot":
                book["bid"].clear(), book["offer"].clear()
            for update in event["updates"]:
                side = book[update["side"]]
                price, size = Decimal(update["price_level"]), Decimal(update["new_quantity"])
                side.pop(price, None) if size == 0 else side.__setitem__(price, size)
    for product, book in books.items():
        reported = summary["books_at_end"][f"coinbase:{product}"]
        assert Decimal(reported["bid"]) == max(book["bid"])
        assert Decimal(reported["ask"]) == min(book["offer"])


def test_min_profit_and_notional_cap_narrow_what_is_found(listed):
    _, loose = replay(*FEES)
    events, strict = replay(*FEES, "--min-profit-bps", "30", "--max-notional", "100")

    assert strict["opportunities_opened"] <= loose["opportunities_opened"]
    for event in events:
        assert Decimal(event["net_bps"]) >= 30
        assert Decimal(event["size"]) * Decimal(event["buy_vwap"]) <= 100


@pytest.mark.django_db
def test_unknown_markets_are_replayed_under_the_venue_symbol_without_crossing():
    events, summary = replay(*FEES)

    assert events == []
    assert summary["opportunities_opened"] == 0
    assert summary["books_at_end"]["kraken:BTC/USD"]["bid"] is not None
    assert "kraken:BTC-USD" not in summary["books_at_end"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--taker-fee-bps", "kraken"], "VENUE=BPS"),
        (["--min-profit-bps", "lots"], "not a number"),
        (["--max-notional", "-5"], "finite number >= 0"),
    ],
)
def test_bad_options_give_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        replay(*args)


@pytest.mark.django_db
def test_a_file_that_is_not_a_recording_is_refused(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ts": 1, "venue": "kraken", "frame": "{}"}\nnot json\n')

    with pytest.raises(CommandError, match=r"bad\.jsonl:2: not a JSON line"):
        call_command("replay", str(bad), stdout=StringIO())


def test_gated_markets_skipped_and_walks_carried_over_change_no_event(tmp_path):
    """The engine's shortcuts (the compiled pair scan: its top-of-book prefilter, reuse of an
    unchanged walk) against none at all. On the benchmark's generated feed: three venues, five
    markets, dislocations that cross."""
    path = tmp_path / "feed.jsonl"
    hot_path.generate(path, 6000, seed=3)
    records = list(read_records(path))
    fast, plain = (Replay(hot_path.venue_configs(), hot_path.LIMITS) for _ in range(2))
    answers = []
    scan_of = fast.pipeline._scan

    class Counted:
        def __init__(self, scan):
            self.inner = scan

        def scan(self, *args):
            crosses = self.inner.scan(*args)
            answers.append(bool(crosses))
            return crosses

    def counted_scan(market, limits):
        scan = scan_of(market, limits)
        if scan is not None:
            scan = Counted(scan)
            fast.pipeline.scans[market] = (limits, scan)
        return scan

    fast.pipeline._scan = counted_scan
    plain.pipeline._scan = lambda *args: None
    plain.pipeline.memos = defaultdict(lambda: None)
    fast_events, plain_events = [], []

    fast.run(records, fast_events.append)
    plain.run(records, plain_events.append)

    assert fast_events == plain_events
    assert sum(event.kind == "open" for event in fast_events) > 0
    if core.COMPILED is not None:
        assert 0 < answers.count(False) < len(answers)


def test_a_depth_10_kraken_recording_keeps_its_books_at_10_and_every_checksum_passes(tmp_path):
    """The venue cuts a depth-10 book at 10 and sends the level that comes into scope after a
    delete; a replay that kept 25 would still hold the level cut earlier and fail the CRC."""
    from tests.markets.test_book import DOC_ASKS, DOC_BIDS
    from tests.markets.venues.kraken.test_feed import book_frame, reference_checksum

    bids, asks = dict(DOC_BIDS), dict(DOC_ASKS)
    frames = [book_frame("snapshot", DOC_BIDS, DOC_ASKS, reference_checksum(bids, asks))]
    bids["45283.6"] = "1.00000000"  # a new best bid pushes the 10th out of the venue's book
    del bids[min(bids, key=Decimal)]
    frames.append(
        book_frame("update", [("45283.6", "1.00000000")], [], reference_checksum(bids, asks))
    )
    del bids["45283.6"]  # deleted again: the venue brings a deeper level into scope
    bids["45270.0"] = "0.50000000"
    update = [("45283.6", "0.00000000"), ("45270.0", "0.50000000")]
    frames.append(book_frame("update", update, [], reference_checksum(bids, asks)))
    subscribe = {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
    subscribe["params"]["depth"] = 10
    records = [
        {"ts": 1.0, "venue": "kraken", "frame": json.dumps(subscribe), "kind": "sent", "url": ""}
    ] + [{"ts": 2.0 + i, "venue": "kraken", "frame": frame} for i, frame in enumerate(frames)]
    path = tmp_path / "kraken10.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))

    replay = Replay(build_venues(recorded_venues(str(path)), {}, {}), Limits())
    replay.run(read_records(path), lambda event: None)
    summary = replay.summary(1.0)

    assert (summary["checksum_ok"], summary["checksum_failed"]) == (3, 0)
    assert summary["books_at_end"]["kraken:BTC/USD"] == {
        "bid": "45283.5",
        "ask": "45285.2",
        "valid": True,
    }
    assert len(replay.pipeline.books["BTC/USD"]["kraken"]) == 20


def test_books_at_end_say_when_a_book_is_invalid_and_why(tmp_path):
    subscribe = {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
    records = [
        {"ts": 1.0, "venue": "kraken", "frame": json.dumps(subscribe), "kind": "sent", "url": ""},
        {"ts": 2.0, "venue": "kraken", "frame": book_frame_with_bad_checksum()},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))

    replay = Replay(build_venues(recorded_venues(str(path)), {}, {}), Limits())
    replay.run(read_records(path), lambda event: None)
    reported = replay.summary(1.0)["books_at_end"]["kraken:BTC/USD"]

    assert reported["valid"] is False
    assert reported["invalid_reason"] == "checksum mismatch"
    assert reported["bid"] == "45283.5"  # the stale top, for inspection, marked as such


def book_frame_with_bad_checksum() -> str:
    from tests.markets.test_book import DOC_ASKS, DOC_BIDS
    from tests.markets.venues.kraken.test_feed import book_frame

    return book_frame("snapshot", DOC_BIDS, DOC_ASKS, 1234)
