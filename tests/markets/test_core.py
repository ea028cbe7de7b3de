"""The compiled core against the plain-Python reference: the same books, counters and events.

Recorded real traffic (the replay sample, cryptofeed's Kraken v1 book), the benchmark's generated
feed and random hypothesis feeds each go through both cores; every difference is a bug.
"""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import hot_path
from markets import core
from markets.recording import apply_record, read_records
from markets.venues import make_feed
from markets.venues.kucoin.feed import KucoinFeed
from markets.venues.okx.feed import OkxFeed
from tests.markets.test_book import CRYPTOFEED, DOC_ASKS, DOC_BIDS, read_kraken_v1
from tests.markets.venues.kucoin import test_feed as kucoin_test
from tests.markets.venues.okx import test_feed as okx_test
from tests.recordings import REPLAY_SMALL, received
from tests.trading.test_detector import cross_text
from trading.engine.replay import Replay, build_venues, recorded_venues

CORES = (core.REFERENCE, core.COMPILED)
pytestmark = pytest.mark.skipif(
    core.COMPILED is None, reason="compiled core not built: run `make setup`"
)


def book_state(book) -> dict:
    """Everything a reader sees of a book, levels exact and whole."""
    return {
        "bids": list(book.bids()),
        "asks": list(book.asks()),
        "top": book.top_prices(),
        "crossed": book.crossed,
        "len": len(book),
        # Only Kraken levels carry checksum text in the reference book.
        "checksum": book.checksum() if book.venue == "kraken" else None,
        "valid": book.valid,
        "reason": book.invalid_reason,
        "sequence": book.sequence,
        "stamps": (book.exchange_ts, book.received_ts, book.lag),
        "updates": book.updates,
    }


def replay_both(venues_of, records: list[dict]) -> list[tuple]:
    """Run `records` through a Replay on each core; return (events, summary, books) per core."""
    results = []
    for which in CORES:
        with core.using(which):
            replay = Replay(venues_of(), hot_path.LIMITS)
        assert {feed.core.name for feed in replay.pipeline.feeds.values()} == {which.name}
        events: list = []
        replay.run(records, events.append)
        books = {
            (venue, market): book_state(book)
            for market, by_venue in replay.pipeline.books.items()
            for venue, book in by_venue.items()
        }
        results.append((events, replay.summary(1.0), books))
    return results


def test_recorded_real_traffic_replays_identically():
    records = list(read_records(REPLAY_SMALL))
    (events, summary, books), compiled = replay_both(
        lambda: build_venues(recorded_venues(str(REPLAY_SMALL)), {}, {}), records
    )

    assert compiled == (events, summary, books)
    assert summary["book_updates"] > 0 and summary["checksum_ok"] > 0


def test_generated_benchmark_feed_replays_identically(tmp_path):
    path = tmp_path / "feed.jsonl"
    hot_path.generate(path, 8000, seed=5)
    records = list(read_records(path))

    (events, summary, books), compiled = replay_both(hot_path.venue_configs, records)

    assert compiled[0] == events  # every lifecycle event, crosses exact
    assert [cross_text(e.cross) for e in compiled[0]] == [cross_text(e.cross) for e in events]
    assert compiled[1] == summary
    assert compiled[2] == books
    assert sum(event.kind == "open" for event in events) > 0
    assert summary["checksum_ok"] > 1000 and summary["checksum_failed"] == 0


def okx_recording() -> OkxFeed:
    feed = OkxFeed("okx", "wss://x", okx_test.RECORDED)
    for ts, text in received("OKX.ws.1.0"):
        feed.handle(text, ts)
    return feed


def kucoin_recording() -> KucoinFeed:
    feed = kucoin_test.recording_feed()
    kucoin_test.play_recording(feed)
    return feed


@pytest.mark.parametrize("play", [okx_recording, kucoin_recording], ids=["okx", "kucoin"])
def test_okx_and_kucoin_recordings_keep_identical_books_on_both_cores(play):
    """Their feeds parse in Python and hand `WireLevel`s to the active core's `Book`."""
    feeds = []
    for which in CORES:
        with core.using(which):
            feeds.append(play())
    reference, compiled = feeds

    assert {type(book) for book in compiled.books.values()} == {core.COMPILED.Book}
    assert compiled.stats == reference.stats
    assert compiled.stats.book_updates > 250 and compiled.stats.malformed == 0
    for market, book in reference.books.items():
        assert book_state(compiled.books[market]) == book_state(book)
        # The levels' text too (OKX's checksum is over it): exponents kept, "2.00" not "2".
        for side in ("bids", "asks"):
            texts = [[str(n) for n in level] for level in getattr(book, side)()]
            assert [[str(n) for n in lv] for lv in getattr(compiled.books[market], side)()] == texts


def test_kraken_v1_recording_checksums_and_books_identically():
    books = {which.name: {} for which in CORES}
    verified = 0
    for pair, snapshot, asks, bids, crc in read_kraken_v1(CRYPTOFEED / "KRAKEN.ws.50.0"):
        states = []
        for which in CORES:
            side = [{"price": lvl[0], "qty": lvl[1]} for lvl in bids]
            other = [{"price": lvl[0], "qty": lvl[1]} for lvl in asks]
            parsed = which.parse_kraken(side), which.parse_kraken(other)
            if snapshot:
                books[which.name][pair] = which.Book("kraken", pair, depth=1000)
                books[which.name][pair].load(*parsed)
            else:
                books[which.name][pair].apply(*parsed)
            states.append(book_state(books[which.name][pair]))
        assert states[0] == states[1]
        if crc is not None:
            assert states[1]["checksum"] == int(crc)
            verified += 1
    assert verified == 4269


def test_documentation_checksum_on_both_cores():
    for which in CORES:
        book = which.Book("kraken", "BTC-USD")
        book.load(
            which.parse_kraken([{"price": p, "qty": q} for p, q in DOC_BIDS]),
            which.parse_kraken([{"price": p, "qty": q} for p, q in DOC_ASKS]),
        )
        assert book.checksum() == 3310070434


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_leading_zeros_change_neither_the_decimal_nor_the_checksum(which):
    plain, padded = which.Book("kraken", "X"), which.Book("kraken", "X")
    plain.load(which.parse_kraken(as_kraken([("100.50", "0.10")])), which.parse_kraken([]))
    padded.load(which.parse_kraken(as_kraken([("000100.50", "00.10")])), which.parse_kraken([]))
    padded.apply(which.parse_kraken(as_kraken([("0000000000000000099.5", "0001")])), [])

    assert [tuple(map(str, level)) for level in padded.bids()] == [
        ("100.50", "0.10"),
        ("99.5", "1"),
    ]
    plain.apply(which.parse_kraken(as_kraken([("99.5", "1")])), [])
    assert padded.checksum() == plain.checksum()


BAD = [
    "1e5",
    "1E-8",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1_000",
    "1.",
    ".5",
    "NaN",
    "Infinity",
    "",
    "0x10",
    "1.0000000000000000001",  # 19 decimals: the fixed point cannot hold it, so never rounded
    "1" * 17,
    "\u0661",  # an Arabic-Indic digit: Decimal would take it
]


@pytest.mark.parametrize("text", BAD)
@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_a_number_either_core_cannot_hold_exactly_is_malformed(which, text):
    with pytest.raises(ValueError):
        which.parse_pairs([[text, "1"]])
    with pytest.raises(ValueError):
        which.parse_pairs([["1", text]])


@pytest.mark.parametrize("which", CORES, ids=lambda c: c.name)
def test_bounds_are_the_same(which):
    assert which.parse_pairs([["999999999999.999999999999999999", "0"]])
    assert which.parse_pairs([["0.000000000000000001", "999999999999999.9"]])
    for price, size in [("1000000000000", "1"), ("0", "1"), ("1", "1000000000000000"), ([], "1")]:
        with pytest.raises((ValueError, TypeError)):
            which.parse_pairs([[price, size]])


def test_a_bad_level_anywhere_in_a_frame_leaves_the_compiled_book_unchanged():
    feed_levels = [["100.5", "1"], ["100.4", "2"], ["1e3", "1"]]
    with core.using(core.COMPILED):
        from markets.venues.binance.feed import BinanceFeed

        feed = BinanceFeed("binance", "wss://x", {"BTC-USD": "BTCUSDT"}, "https://x")
    book = feed.books["BTC-USD"]
    feed.handle_snapshot("BTC-USD", '{"lastUpdateId":1,"bids":[["100","1"]],"asks":[]}', 1.0)
    before = book_state(book)
    frame = (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        f'"U":2,"u":2,"b":{str(feed_levels).replace(chr(39), chr(34))},"a":[]}}}}'
    )

    assert feed.handle(frame, 2.0) == ()
    assert feed.stats.malformed == 1
    assert book_state(book) == before


# Prices on a small grid so levels collide, sizes often zero so levels come and go.
price_text = st.builds(
    lambda units, decimals: format(Decimal(units).scaleb(-decimals), "f"),
    st.integers(1, 400),
    st.sampled_from([0, 1, 2, 8]),
)
size_text = st.one_of(
    st.just("0"),
    st.just("0.00000000"),
    st.decimals(min_value=0, max_value=10**6, places=8).map(lambda d: format(d, "f")),
)
# Now and then with leading zeros: neither the Decimal nor the checksum fragment keeps them.
padded = st.sampled_from(["", "", "", "00"])
level = st.tuples(
    st.builds(str.__add__, padded, price_text), st.builds(str.__add__, padded, size_text)
)
frames = st.lists(st.tuples(st.lists(level, max_size=6), st.lists(level, max_size=6)), max_size=30)


def as_kraken(levels: list[tuple[str, str]]) -> list[dict]:
    return [{"price": price, "qty": qty} for price, qty in levels]


@settings(max_examples=150, deadline=None)
@given(snapshot=st.tuples(st.lists(level, max_size=20), st.lists(level, max_size=20)), steps=frames)
def test_random_feeds_keep_identical_books(snapshot, steps):
    books = [which.Book("kraken", "X", depth=10) for which in CORES]
    for book, which in zip(books, CORES, strict=True):
        book.load(*(which.parse_kraken(as_kraken(side)) for side in snapshot))
    assert book_state(books[0]) == book_state(books[1])
    for bids, asks in steps:
        for book, which in zip(books, CORES, strict=True):
            book.apply(which.parse_kraken(as_kraken(bids)), which.parse_kraken(as_kraken(asks)))
        assert book_state(books[0]) == book_state(books[1])


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789.-+eE _", max_size=24))
def test_random_text_is_accepted_or_refused_alike(text):
    outcomes = []
    for which in CORES:
        try:
            outcomes.append(which.parse_pairs([[text, "1"]]) and "ok")
        except ValueError:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]
    if outcomes[0] == "ok":
        (reference,) = core.REFERENCE.parse_pairs([[text, "1"]])
        book = core.COMPILED.Book("x", "y")
        book.load(core.COMPILED.parse_pairs([[text, "1"]]), [])
        assert book.best_bid() == reference[:2]


fee = st.sampled_from(["0", "0.001", "0.0026", "0.006", "0.00075"]).map(Decimal)
lot_size = st.sampled_from(["0.00000001", "0.001", "0.1", "1", "0.0005"]).map(Decimal)
cap = st.one_of(st.none(), st.sampled_from(["50", "1000", "50000", "123.45"]).map(Decimal))
# Two venues' sides around 100, so they often cross after fees.
cross_side = st.lists(
    st.tuples(
        st.integers(9_800, 10_200).map(lambda ticks: format(Decimal(ticks).scaleb(-2), "f")),
        st.decimals(min_value=0, max_value=50, places=4).map(lambda d: format(d, "f")),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    asks=cross_side,
    bids=cross_side,
    fees=st.tuples(fee, fee),
    min_bps=st.sampled_from(["0", "5", "12.5"]).map(Decimal),
    lots=st.tuples(lot_size, lot_size),
    caps=st.tuples(cap, cap, cap),
)
def test_the_integer_walk_finds_the_same_cross_as_the_decimal_one(
    asks, bids, fees, min_bps, lots, caps
):
    from trading.detector import best_cross

    results = []
    for which in CORES:
        buy, sell = which.Book("a", "X"), which.Book("b", "X")
        buy.load([], which.parse_pairs(asks))
        sell.load(which.parse_pairs(bids), [])
        reads: list = []
        cross = best_cross(
            buy.asks(),
            sell.bids(),
            buy_fee=fees[0],
            sell_fee=fees[1],
            min_profit_bps=min_bps,
            buy_lot=lots[0],
            sell_lot=lots[1],
            exchange_ts=None,
            received_ts=1.0,
            detected_ts=2.0,
            max_notional=caps[0],
            max_base=caps[1],
            max_quote=caps[2],
            reads=reads,
        )
        results.append((cross, reads, None if cross is None else str(cross.size)))
    assert results[0] == results[1]


def test_the_walk_falls_back_to_decimals_when_a_number_does_not_fit():
    """A cap finer than the books' fixed point: the compiled walk declines, the answer stays."""
    buy, sell = core.COMPILED.Book("a", "X"), core.COMPILED.Book("b", "X")
    buy.load([], core.COMPILED.parse_pairs([["99", "1"]]))
    sell.load(core.COMPILED.parse_pairs([["101", "1"]]), [])
    fine = Decimal("50.0000000000000000001")  # 19 decimals: no 10^-k of the books holds it

    assert (
        core.WALK[1](
            buy.asks(), sell.bids(), (1, 1), ((fine.as_integer_ratio(), (1, 1)),), None, (1, 100)
        )
        is None
    )


# -- the compiled handlers (`*Wire`): a frame's text straight into the books -------------------


def feeds_on_both_cores() -> list[dict]:
    """The benchmark's three feeds, once per core."""
    pairs = []
    for which in CORES:
        with core.using(which):
            pairs.append({c.slug: make_feed(c) for c in hot_path.venue_configs()})
    return pairs


def feed_state(feed) -> dict:
    return {
        "stats": feed.stats.as_dict(),
        "books": {market: book_state(book) for market, book in feed.books.items()},
        "clock_offset": feed.clock_offset,
        "actions": feed.take_actions(),
        "last_seq": getattr(feed, "last_seq", None),
        "buffers": {m: len(b) for m, b in getattr(feed, "buffers", {}).items()},
    }


@pytest.fixture(scope="module")
def generated_records(tmp_path_factory) -> list[dict]:
    path = tmp_path_factory.mktemp("wire") / "feed.jsonl"
    hot_path.generate(path, 3000, seed=7)
    return list(read_records(path))


def play(feeds: dict, record: dict):
    return apply_record(
        feeds[record["venue"]],
        record.get("kind"),
        record["frame"],
        record.get("url", ""),
        record["ts"],
    )


def test_the_compiled_handlers_take_the_usual_frames_themselves(generated_records):
    """Else the differential tests below would compare the reference with itself."""
    _, compiled = feeds_on_both_cores()
    referred = []
    for feed in compiled.values():

        def counted(text, ts, feed=feed):
            referred.append(text)
            return type(feed).handle(feed, text, ts)

        feed.handle = type(feed.handle.__self__)(feed, counted).handle
    frames = [r for r in generated_records if r.get("kind") is None]
    for record in generated_records:
        play(compiled, record)

    assert 0 < len(referred) < len(frames) // 50  # heartbeats and the first Binance diffs


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_frames_end_alike_on_both_cores(generated_records, data):
    """Every frame, the damaged one included: the same changes, books, counters and actions."""
    reference, compiled = feeds_on_both_cores()
    start = data.draw(st.integers(0, len(generated_records) - 40))
    window = generated_records[:12] + generated_records[start : start + 40]
    damaged = data.draw(st.integers(12, len(window) - 1))
    record = dict(window[damaged])
    text = record["frame"]
    at = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["cut", "drop", "insert", "replace"]))
    piece = data.draw(
        st.sampled_from(['"', "\\", "{", "}", "[", "]", ",", ":", "-", "0", "9", ".", "e", " "])
        | st.sampled_from(['"x"', "null", "1e5", "\\u0061", "\x01", "é"])
    )
    if edit == "cut":
        text = text[:at]
    elif edit == "drop":
        text = text[:at] + text[at + 1 :]
    elif edit == "insert":
        text = text[:at] + piece + text[at:]
    else:
        text = text[:at] + piece + text[at + len(piece) :]
    window[damaged] = {**record, "frame": text}

    for record in window:
        assert play(reference, record) == play(compiled, record)
    for venue in reference:
        assert feed_state(reference[venue]) == feed_state(compiled[venue])


FRAME_CASES = {
    "coinbase": [
        '{"channel":"l2_data","timestamp":"2026-01-01T00:00:01.5Z","sequence_num":%d,"events":'
        '[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","price_level":'
        '"59000.01","new_quantity":"1.5"}]}]}',
        # a duplicate key (the last one counts), an unknown product, an unknown side, 1e5
        '{"channel":"l2_data","sequence_num":%d,"sequence_num":7,"events":[]}',
        '{"channel":"l2_data","sequence_num":%d,"events":[{"type":"update","product_id":"X",'
        '"updates":[]}]}',
        '{"channel":"l2_data","sequence_num":%d,"events":[{"type":"update","product_id":'
        '"BTC-USD","updates":[{"side":"ask","price_level":"1","new_quantity":"1"}]}]}',
        '{"channel":"l2_data","sequence_num":%d,"events":[{"type":"update","product_id":'
        '"BTC-USD","updates":[{"side":"bid","price_level":"1e5","new_quantity":"1"}]}]}',
        '{"channel":"l2_data","timestamp":"2026-02-30T00:00:00Z","sequence_num":%d,"events":[]}',
        '{"channel":"l2_data","timestamp":"","sequence_num":%d,"events":[{"type":"update",'
        '"product_id":"BTC-USD","updates":[{"side":"offer","price_level":"60000",'
        '"new_quantity":"0"}]}]}',
    ],
    "kraken": [
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1,'
        '"qty":-0}],"asks":[],"checksum":1,"timestamp":"2026-01-01T00:00:00.000001Z"}]}',
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],'
        '"checksum":"12"}]}',
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
        '"59000.1","qty":0}],"checksum":12.0}]}',
    ],
    "binance": [
        '{"stream":"x","data":{"e":"depthUpdate","E":1.5,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":3,"u":2,"b":[],"a":[]}}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,'
        '"b":[["1","2","3"]],"a":[]}}',
    ],
}


@pytest.mark.parametrize(
    ("venue", "frame"), [(v, f) for v, frames in FRAME_CASES.items() for f in frames]
)
def test_odd_frames_end_alike_on_both_cores(generated_records, venue, frame):
    reference, compiled = feeds_on_both_cores()
    for record in generated_records[:400]:
        play(reference, record)
        play(compiled, record)
    seq = (reference["coinbase"].last_seq or 0) + 1
    text = frame % seq if "%d" in frame else frame

    assert reference[venue].handle(text, 2e9) == compiled[venue].handle(text, 2e9)
    assert feed_state(reference[venue]) == feed_state(compiled[venue])


# -- the compiled top-of-book gate -------------------------------------------------------------

top_price = st.integers(9_900, 10_100).map(lambda ticks: Decimal(ticks).scaleb(-2))


@settings(max_examples=300, deadline=None)
@given(
    tops=st.lists(
        st.tuples(
            st.one_of(st.none(), top_price),
            st.one_of(st.none(), top_price),
            fee,
            st.booleans(),  # valid
            st.sampled_from([0.0, 1.0, 3.0]),  # age
            st.sampled_from([0.0, 0.5, 2.0]),  # lag
        ),
        min_size=2,
        max_size=4,
    ),
    min_bps=st.sampled_from(["0", "5", "12.5", "-3"]).map(Decimal),
    max_lag=st.sampled_from([None, 1.0]),
)
def test_the_gate_answers_as_the_detectors_prefilter(tops, min_bps, max_lag):
    from trading.detector import top_factors, top_products

    now, max_age = 10.0, 2.0
    books, passing = [], []
    for number, (ask, bid, venue_fee, valid, age, lag) in enumerate(tops):
        book = core.COMPILED.Book(f"v{number}", "X")
        book.load(
            [] if bid is None else [(bid, Decimal(1), None)],
            [] if ask is None else [(ask, Decimal(1), None)],
        )
        if not valid:
            book.invalidate("test")
        book.stamp(None, now - age, lag)
        books.append(book)
        fresh = valid and age <= max_age and (max_lag is None or lag <= max_lag)
        passing.append(top_products(ask, bid, venue_fee, min_bps) if fresh else None)
    expected = any(
        a is not None
        and b is not None
        and i != j
        and b[1] is not None
        and a[0] is not None
        and b[1] >= a[0]
        for i, a in enumerate(passing)
        for j, b in enumerate(passing)
    )
    gate = core.TopGate(books, top_factors([t[2] for t in tops], min_bps))

    assert gate.crossable(now, max_age, max_lag) is expected


# -- frozen slots dataclasses built in C -------------------------------------------------------


def test_slots_new_builds_what_the_dataclass_builds_and_refuses_what_it_cannot():
    from dataclasses import FrozenInstanceError, dataclass, fields

    from trading.detector import OpportunityKey
    from trading.lifecycle import EventKind, OpportunityEvent

    make = core.SlotsNew(OpportunityEvent)
    values = (
        EventKind.OPEN,
        OpportunityKey("X", "a", "b"),
        None,
        1.0,
        None,
        0.0,
        Decimal(1),
        0,
        "",
    )
    built = make(*values)

    assert type(built) is OpportunityEvent
    assert built == OpportunityEvent(*values) and hash(built) == hash(OpportunityEvent(*values))
    assert [getattr(built, f.name) for f in fields(built)] == list(values)
    with pytest.raises(FrozenInstanceError):
        built.kind = EventKind.CLOSE
    with pytest.raises(TypeError, match="takes 9 values, 8 given"):
        make(*values[:-1])

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self):
            assert self.a > 0

    for cls in (NoSlots, Checked, int):
        with pytest.raises(TypeError):
            core.SlotsNew(cls)
