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
from markets.recording import read_records
from tests.markets.test_book import CRYPTOFEED, DOC_ASKS, DOC_BIDS, read_kraken_v1
from tests.recordings import REPLAY_SMALL
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
    assert compiled[1] == summary
    assert compiled[2] == books
    assert sum(event.kind == "open" for event in events) > 0
    assert summary["checksum_ok"] > 1000 and summary["checksum_failed"] == 0


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
level = st.tuples(price_text, size_text)
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
