"""The depth walk of `trading.detector` and the lifecycle of `trading.lifecycle`.

Hand-computed cases, then hypothesis against an independent brute-force reference.
"""

from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markets import core
from markets.book import Book
from trading.detector import (
    Cross,
    OpportunityKey,
    best_cross,
    common_lot,
    find_opportunities,
    pays_at_top,
)
from trading.lifecycle import EventKind, OpportunityTracker

D = Decimal
BASE = {
    "buy_fee": D(0),
    "sell_fee": D(0),
    "min_profit_bps": D(0),
    "buy_lot": D("0.001"),
    "sell_lot": D("0.001"),
    "exchange_ts": 1.0,
    "received_ts": 2.0,
    "detected_ts": 3.0,
}


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in pairs]


def cross(asks, bids, **overrides) -> Cross | None:
    return best_cross(asks, bids, **{**BASE, **overrides})


# -- hand-computed walks ---------------------------------------------------------------------


def test_one_level_each_side_reports_vwaps_fees_and_net_over_buy_notional():
    result = cross(
        levels(("100", "1")),
        levels(("102", "2")),
        buy_fee=D("0.001"),
        sell_fee=D("0.001"),
    )

    assert result.size == 1
    assert (result.buy_vwap, result.sell_vwap) == (100, 102)
    assert (result.buy_notional, result.sell_notional) == (100, 102)
    assert result.gross_profit == 2
    assert result.fees == D("0.202")
    assert result.net_profit == D("1.798")
    assert result.margin_bps == D("179.8")
    assert result.asks_taken == ((100, 1),)
    assert result.bids_taken == ((102, 1),)
    assert (result.exchange_ts, result.received_ts, result.detected_ts) == (1.0, 2.0, 3.0)


def test_walk_stops_at_first_slice_below_threshold_even_if_it_still_profits():
    # Slices: 100/103 x1 (300 bps), 101/103 x0.5 (198 bps), 101/101.5 x0.5 (49.5 bps) ...
    asks = levels(("100", "1"), ("101", "1"), ("102", "5"))
    bids = levels(("103", "1.5"), ("101.5", "3"))

    result = cross(asks, bids, min_profit_bps=D(60))

    assert result.size == D("1.5")
    assert result.buy_notional == D("150.5")
    assert result.sell_notional == D("154.5")
    assert result.asks_taken == ((100, 1), (101, D("0.5")))
    assert result.bids_taken == ((103, D("1.5")),)
    assert (result.buy_limit, result.sell_limit) == (101, 103)


def test_walk_takes_every_slice_that_meets_threshold():
    asks = levels(("100", "1"), ("101", "1"), ("102", "5"))
    bids = levels(("103", "1.5"), ("101.5", "3"))

    result = cross(asks, bids, min_profit_bps=D(40))

    assert result.size == 2
    assert result.bids_taken == ((103, D("1.5")), (D("101.5"), D("0.5")))


def test_fees_turn_a_gross_positive_cross_into_none():
    asks, bids = levels(("100", "1")), levels(("100.3", "1"))

    assert cross(asks, bids) is not None
    assert cross(asks, bids, buy_fee=D("0.0026"), sell_fee=D("0.0026")) is None


@pytest.mark.parametrize(
    ("bid", "min_profit_bps", "pays"),
    [
        ("101.101", "100", True),  # 101.101 / (100 * 1.001) - 1 is exactly 100 bps
        ("101.100", "100", False),  # one price unit below the edge
        ("101.101", "100.0001", False),  # threshold one unit above the edge
    ],
)
def test_threshold_is_inclusive_at_the_exact_edge(bid, min_profit_bps, pays):
    asks, bids = levels(("100", "1")), levels((bid, "1"))
    fees = {"buy_fee": D("0.001"), "min_profit_bps": D(min_profit_bps)}

    result = cross(asks, bids, **fees)

    assert (result is not None) is pays
    assert pays_at_top(D(100), D(bid), D("0.001"), D(0), D(min_profit_bps)) is pays


def test_margin_bps_is_over_buy_notional_before_fee():
    result = cross(levels(("100", "1")), levels(("101.101", "1")), buy_fee=D("0.001"))

    assert result.net_profit == D("1.001")
    assert result.margin_bps == D("100.1")


def test_notional_cap_cuts_the_last_slice_to_the_lot():
    asks = levels(("100", "1"), ("110", "1"))
    bids = levels(("120", "5"))

    result = cross(asks, bids, max_notional=D(160), buy_lot=D("0.01"), sell_lot=D("0.01"))

    # 100 spent on the first level; 60 / 110 = 0.5454.. rounds down to 0.54.
    assert result.size == D("1.54")
    assert result.buy_notional == D("159.4")
    assert result.asks_taken == ((100, 1), (110, D("0.54")))


def test_quote_cap_bounds_buy_notional_including_fee():
    asks, bids = levels(("100", "2")), levels(("120", "5"))

    by_quote = cross(asks, bids, buy_fee=D("0.01"), max_quote=D("101"))
    by_notional = cross(asks, bids, buy_fee=D("0.01"), max_notional=D("101"))

    assert by_quote.size == 1  # 100 notional + 1 fee
    assert by_notional.size == D("1.01")


def test_base_cap_bounds_size():
    result = cross(levels(("100", "5")), levels(("120", "5")), max_base=D("1.2345"))

    assert result.size == D("1.234")


def test_size_rounds_to_coarser_lot_and_vwaps_are_recomputed():
    asks = levels(("100", "1"), ("104", "0.3456"))
    bids = levels(("106", "1.1"), ("105", "2"))

    result = cross(asks, bids, buy_lot=D("0.05"), sell_lot=D("0.25"))

    # 1.3456 pays; the 0.25 lot keeps 1.25 of it.
    assert result.size == D("1.25")
    assert result.buy_vwap == D("100.8")  # (100 + 0.25 * 104) / 1.25
    assert result.sell_vwap == D("105.88")  # (1.1 * 106 + 0.15 * 105) / 1.25
    assert result.asks_taken == ((100, 1), (104, D("0.25")))
    assert result.bids_taken == ((106, D("1.1")), (105, D("0.15")))


@pytest.mark.parametrize(
    ("lot_a", "lot_b", "common"),
    [("0.001", "0.01", "0.01"), ("1", "0.1", "1"), ("0.2", "0.5", "1"), ("0.25", "0.25", "0.25")],
)
def test_common_lot_is_the_coarser_lot_or_the_least_common_multiple(lot_a, lot_b, common):
    assert common_lot(D(lot_a), D(lot_b)) == D(common)


def test_size_below_one_lot_is_no_cross():
    assert cross(levels(("100", "0.5")), levels(("101", "1")), buy_lot=D(1)) is None


@pytest.mark.parametrize(
    ("asks", "bids"),
    [([], levels(("101", "1"))), (levels(("100", "1")), []), ([], [])],
)
def test_empty_side_is_no_cross(asks, bids):
    assert cross(asks, bids) is None


def guarded(book, allowed):
    """Yield the first `allowed` levels of `book`; fail the test if the walk asks for more."""
    for i, level in enumerate(book):
        if i >= allowed:
            raise AssertionError("walked too deep")
        yield level


def test_walk_pulls_only_one_level_past_the_last_slice_taken():
    asks = levels(("100", "1"), ("103", "1"), ("104", "1"), ("105", "1"))
    bids = levels(("102", "2"), ("90", "1"))

    result = cross(guarded(asks, 2), guarded(bids, 1))

    assert result.size == 1


def test_walk_stops_pulling_levels_once_the_base_cap_is_reached():
    asks = levels(("100", "1"), ("100.5", "1"))
    bids = levels(("110", "1"), ("109", "1"))

    result = cross(guarded(asks, 1), guarded(bids, 1), max_base=D(1))

    assert result.size == 1


def test_prefilter_rejects_top_that_does_not_pay_after_fees():
    assert pays_at_top(D(100), D("100.5"), D("0.001"), D("0.001"), D(0))
    assert not pays_at_top(D(100), D("100.5"), D("0.0026"), D("0.0026"), D(0))


# -- properties against a brute-force reference -------------------------------------------------

UNIT = Fraction(1, 10)  # every generated size and lot is a multiple of this
QUOTIENT_60 = Context(prec=60, rounding=ROUND_DOWN)


def reference(asks, bids, fee_a, fee_b, min_bps, lot, max_notional, max_base, max_quote):
    """Expand both books into units of 0.1, pair them best first, keep the prefix that pays."""
    ask_units = [Fraction(p) for p, q in asks for _ in range(int(q / D("0.1")))]
    bid_units = [Fraction(p) for p, q in bids for _ in range(int(q / D("0.1")))]
    fa, fb, threshold = Fraction(fee_a), Fraction(fee_b), Fraction(min_bps) / 10_000
    buy = Fraction(0)
    count = 0
    for a, b in zip(ask_units, bid_units, strict=False):
        if b * (1 - fb) / (a * (1 + fa)) - 1 < threshold:
            break
        within = (
            (max_notional is None or buy + a * UNIT <= max_notional)
            and (max_quote is None or (buy + a * UNIT) * (1 + fa) <= max_quote)
            and (max_base is None or (count + 1) * UNIT <= max_base)
        )
        if not within:
            break
        buy += a * UNIT
        count += 1
    units = int(count * UNIT / Fraction(lot)) * int(Fraction(lot) / UNIT)
    buy = sum(ask_units[:units], Fraction(0)) * UNIT
    sell = sum(bid_units[:units], Fraction(0)) * UNIT
    return units * UNIT, buy, sell, sell - buy - fa * buy - fb * sell


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: D(n).scaleb(-places))


def book(low: int, high: int, descending: bool) -> st.SearchStrategy[list[tuple[Decimal, Decimal]]]:
    prices = st.lists(decimals(low, high, 1), min_size=1, max_size=4, unique=True)
    return prices.flatmap(
        lambda ps: st.lists(decimals(1, 30, 1), min_size=len(ps), max_size=len(ps)).map(
            lambda qs: list(zip(sorted(ps, reverse=descending), qs, strict=True))
        )
    )


walk_inputs = st.fixed_dictionaries(
    {
        # Bids drawn higher than asks so that most books cross.
        "asks": book(950, 1030, descending=False),
        "bids": book(980, 1060, descending=True),
        "buy_fee": decimals(0, 30, 4),
        "sell_fee": decimals(0, 30, 4),
        "min_profit_bps": decimals(-20, 200, 1),
        "buy_lot": st.sampled_from([D("0.1"), D("0.2"), D("0.5"), D(1)]),
        "sell_lot": st.sampled_from([D("0.1"), D("0.5"), D(1)]),
        "max_notional": st.none() | decimals(500, 20_000, 1),
        "max_base": st.none() | decimals(1, 100, 1),
        "max_quote": st.none() | decimals(500, 20_000, 1),
    }
)


def walk(inputs) -> Cross | None:
    i = inputs
    return best_cross(
        i["asks"],
        i["bids"],
        **{**BASE, **{k: v for k, v in i.items() if k not in ("asks", "bids")}},
    )


@settings(max_examples=400)
@given(walk_inputs)
def test_walk_matches_brute_force_reference(inputs):
    i = inputs
    size, buy, sell, net = reference(
        i["asks"],
        i["bids"],
        i["buy_fee"],
        i["sell_fee"],
        i["min_profit_bps"],
        common_lot(i["buy_lot"], i["sell_lot"]),
        i["max_notional"],
        i["max_base"],
        i["max_quote"],
    )

    result = walk(inputs)

    if size == 0:
        assert result is None
        return
    assert Fraction(result.size) == size
    assert Fraction(result.buy_notional) == buy
    assert Fraction(result.sell_notional) == sell
    assert Fraction(result.net_profit) == net
    assert result.buy_vwap == quotient(buy / size)
    assert result.sell_vwap == quotient(sell / size)


def quotient(value: Fraction) -> Decimal:
    return QUOTIENT_60.divide(D(value.numerator), D(value.denominator))


@given(walk_inputs)
def test_reported_amounts_are_consistent_and_within_caps(inputs):
    result = walk(inputs)

    if result is None:
        return
    assert result.net_profit == result.gross_profit - result.fees
    assert result.gross_profit == result.sell_notional - result.buy_notional
    assert result.fees == (
        inputs["buy_fee"] * result.buy_notional + inputs["sell_fee"] * result.sell_notional
    )
    assert result.size % inputs["buy_lot"] == 0
    assert result.size % inputs["sell_lot"] == 0
    assert sum(q for _, q in result.asks_taken) == result.size
    assert sum(q for _, q in result.bids_taken) == result.size
    if inputs["max_notional"] is not None:
        assert result.buy_notional <= inputs["max_notional"]
    if inputs["max_quote"] is not None:
        assert result.buy_notional * (1 + inputs["buy_fee"]) <= inputs["max_quote"]
    if inputs["max_base"] is not None:
        assert result.size <= inputs["max_base"]


# -- find_opportunities ------------------------------------------------------------------------


@dataclass
class FakeBook:
    ask_levels: list[tuple[Decimal, Decimal]]
    bid_levels: list[tuple[Decimal, Decimal]]
    valid: bool = True
    exchange_ts: float | None = 99.0
    received_ts: float | None = 100.0

    def asks(self):
        return iter(self.ask_levels)

    def bids(self):
        return iter(self.bid_levels)


FEES = {"kraken": D("0.001"), "coinbase": D("0.001"), "binance": D("0.001")}
LOTS = {"kraken": D("0.0001"), "coinbase": D("0.001"), "binance": D("0.01")}


def markets_books(**changes) -> dict[str, FakeBook]:
    books = {
        "kraken": FakeBook(levels(("100", "1")), levels(("99", "1"))),
        "coinbase": FakeBook(levels(("103", "1")), levels(("102", "0.5"))),
        "binance": FakeBook(levels(("100.5", "1")), levels(("100", "1"))),
    }
    for venue, fields in changes.items():
        for name, value in fields.items():
            setattr(books[venue], name, value)
    return books


def find(books, now=100.5, **kwargs) -> dict[OpportunityKey, Cross]:
    return find_opportunities(
        "BTC-USD", books, FEES, LOTS, min_profit_bps=D(10), max_book_age=1.0, now=now, **kwargs
    )


def test_find_opportunities_returns_each_ordered_pair_that_pays():
    crosses = find(markets_books())

    assert set(crosses) == {
        OpportunityKey("BTC-USD", "kraken", "coinbase"),
        OpportunityKey("BTC-USD", "binance", "coinbase"),
    }
    assert crosses[OpportunityKey("BTC-USD", "kraken", "coinbase")].size == D("0.5")


def test_find_opportunities_stamps_cross_with_latest_book_and_detection_time():
    books = markets_books(coinbase={"exchange_ts": 100.1, "received_ts": 100.2})

    found = find(books)[OpportunityKey("BTC-USD", "kraken", "coinbase")]

    assert (found.exchange_ts, found.received_ts, found.detected_ts) == (100.1, 100.2, 100.5)


@pytest.mark.parametrize(
    "change",
    [{"valid": False}, {"received_ts": 99.4}, {"received_ts": None}],
    ids=["invalid", "stale", "never-received"],
)
def test_invalid_or_stale_book_never_produces_an_opportunity(change):
    crosses = find(markets_books(coinbase=change))

    assert crosses == {}


def test_book_exactly_max_age_old_is_still_fresh():
    assert find(markets_books(coinbase={"received_ts": 99.5}))


def test_find_opportunities_caps_by_balances_and_missing_balance_means_none():
    crosses = find(
        markets_books(),
        base_by_venue={"coinbase": D("0.2")},
        quote_by_venue={"kraken": D(1000)},
    )

    assert crosses[OpportunityKey("BTC-USD", "kraken", "coinbase")].size == D("0.2")
    assert OpportunityKey("BTC-USD", "binance", "coinbase") not in crosses


# -- lifecycle ---------------------------------------------------------------------------------

KEY = OpportunityKey("BTC-USD", "kraken", "coinbase")


def priced(size: str, ask: str = "100", bid: str = "102") -> Cross:
    return cross(levels((ask, size)), levels((bid, size)))


def test_lifecycle_opens_updates_with_peak_and_closes():
    tracker = OpportunityTracker()

    opened = tracker.observe(KEY, priced("1"), now=10.0)
    grew = tracker.observe(KEY, priced("3"), now=11.0)
    shrank = tracker.observe(KEY, priced("2"), now=12.0)
    closed = tracker.observe(KEY, None, now=14.5)

    assert [e.kind for e in (opened, grew, shrank, closed)] == [
        EventKind.OPEN,
        EventKind.UPDATE,
        EventKind.UPDATE,
        EventKind.CLOSE,
    ]
    assert (opened.peak_net_profit, grew.peak_net_profit, shrank.peak_net_profit) == (2, 6, 6)
    assert shrank.updates == 2
    assert closed.cross.size == 2
    assert (closed.opened_at, closed.closed_at, closed.duration) == (10.0, 14.5, 4.5)
    assert closed.peak_net_profit == 6
    assert KEY not in tracker


def test_lifecycle_emits_nothing_when_size_and_net_are_unchanged():
    tracker = OpportunityTracker()
    tracker.observe(KEY, priced("1"), now=10.0)

    assert tracker.observe(KEY, priced("1"), now=11.0) is None
    assert tracker.observe(KEY, priced("1", ask="101", bid="103"), now=12.0) is None
    assert tracker.observe(KEY, priced("1", bid="103"), now=13.0).kind is EventKind.UPDATE


def test_lifecycle_ignores_none_for_a_pair_never_opened():
    assert OpportunityTracker().observe(KEY, None, now=1.0) is None


def test_book_going_invalid_closes_its_opportunities():
    tracker = OpportunityTracker()
    tracker.observe_market("BTC-USD", find(markets_books()), now=100.5)

    events = tracker.observe_market(
        "BTC-USD", find(markets_books(coinbase={"valid": False})), now=100.6
    )

    assert {(e.kind, e.key.buy_venue) for e in events} == {
        (EventKind.CLOSE, "kraken"),
        (EventKind.CLOSE, "binance"),
    }
    assert KEY not in tracker


def test_observe_market_leaves_other_markets_open():
    tracker = OpportunityTracker()
    eth = OpportunityKey("ETH-USD", "kraken", "coinbase")
    tracker.observe(eth, priced("1"), now=1.0)

    assert tracker.observe_market("BTC-USD", {}, now=2.0) == []
    assert eth in tracker


def test_close_venue_closes_only_pairs_trading_on_it():
    tracker = OpportunityTracker()
    other = OpportunityKey("BTC-USD", "binance", "kraken")
    spared = OpportunityKey("BTC-USD", "binance", "bitstamp")
    for key in (KEY, other, spared):
        tracker.observe(key, priced("1"), now=1.0)

    events = tracker.close_venue("kraken", now=2.0)

    assert {e.key for e in events} == {KEY, other}
    assert {e.close_reason for e in events} == {"venue"}
    assert spared in tracker


def test_close_all_closes_everything_with_the_reason():
    tracker = OpportunityTracker()
    tracker.observe(KEY, priced("1"), now=1.0)

    events = tracker.close_all(now=3.0, reason="shutdown")

    assert [(e.kind, e.close_reason, e.closed_at) for e in events] == [
        (EventKind.CLOSE, "shutdown", 3.0)
    ]
    assert tracker.close_all(now=4.0, reason="shutdown") == []


# -- the memo: carried work must never change a result ----------------------------------------

VENUES = ("kraken", "coinbase", "binance")
change_steps = st.lists(
    st.tuples(
        st.sampled_from(VENUES),
        st.sampled_from(["bid", "ask", "invalidate", "reload", "age"]),
        decimals(990, 1010, 0),
        st.sampled_from([D(0), D("0.5"), D(1), D("2.5")]),
    ),
    min_size=1,
    max_size=40,
)


def cross_text(cross: Cross) -> tuple:
    """Every number of a cross as its text: equal crosses can still differ in exponent."""
    return (
        *(str(getattr(cross, name)) for name in NUMBERS),
        *((str(price), str(size)) for price, size in cross.asks_taken + cross.bids_taken),
    )


NUMBERS = (
    "size",
    "buy_vwap",
    "sell_vwap",
    "buy_notional",
    "sell_notional",
    "gross_profit",
    "fees",
    "net_profit",
    "margin_bps",
)
BOOK_TYPES = [Book] + ([] if core.COMPILED is None else [core.COMPILED.Book])


@pytest.mark.parametrize("book_type", BOOK_TYPES, ids=lambda t: t.__module__)
@settings(max_examples=200)
@given(steps=change_steps)
def test_memo_gives_exactly_what_a_fresh_detection_gives(book_type, steps):
    """Every step changes one real book; with and without the memo the crosses are equal. On
    compiled books the compiled pair scan (its own memo, its fill and report in integers) is
    held to the `Decimal` loop as well, digit for digit."""
    from trading.detector import pair_scan

    books = {venue: book_type(venue, "BTC-USD") for venue in VENUES}
    for offset, book in enumerate(books.values()):
        book.load([(D(995 + offset), D(1), None)], [(D(1000 + offset), D(1), None)])
        book.stamp(1.0, 100.0)
    memo: dict = {}
    scan = pair_scan("BTC-USD", books, FEES, LOTS, D(10), None)
    assert (scan is None) is (book_type is Book)
    now = 100.0
    for venue, kind, price, size in steps:
        book = books[venue]
        now += 0.1
        if kind == "bid" and price < (book.best_ask() or (D(10**6),))[0]:
            book.set_bid(price, size)
        elif kind == "ask" and price > (book.best_bid() or (D(0),))[0]:
            book.set_ask(price, size)
        elif kind == "invalidate":
            book.invalidate("test")
        elif kind == "reload":
            book.load([(price - 6, size or D(1), None)], [(price, D(1), None)])
        if kind != "age":
            book.stamp(now, now)
        fresh = find(books, now=now)

        assert find(books, now=now, memo=memo) == fresh
        if scan is not None:
            scanned = scan.scan(now, 1.0, None)
            assert scanned == fresh
            assert {k: cross_text(c) for k, c in scanned.items()} == {
                k: cross_text(c) for k, c in fresh.items()
            }


def test_a_restamped_cross_from_the_compiled_scan_is_a_whole_frozen_cross():
    """The scan copies its last cross in C: the same fields but the three stamps, and still the
    frozen dataclass (equal, hashable, immutable) that `_restamp` would have built."""
    from dataclasses import FrozenInstanceError

    from trading.detector import _restamp, pair_scan

    books = {venue: core.COMPILED.Book(venue, "BTC-USD") for venue in ("kraken", "coinbase")}
    books["kraken"].load([(D(99), D(1), None)], [(D(100), D(1), None)])
    books["coinbase"].load([(D(102), D("0.5"), None)], [(D(103), D(1), None)])
    books["kraken"].stamp(10.0, 10.1)
    books["coinbase"].stamp(10.2, 10.3)
    scan = pair_scan("BTC-USD", books, FEES, LOTS, D(10), None)
    key = OpportunityKey("BTC-USD", "kraken", "coinbase")
    walked = scan.scan(10.5, 1.0, None)[key]
    books["kraken"].stamp(10.6, 10.7)  # a frame that changes no level the walk read

    again = scan.scan(10.8, 1.0, None)[key]

    assert type(again) is Cross and again is not walked
    assert again == _restamp(walked, books["kraken"], 10.8)
    assert (again.exchange_ts, again.received_ts, again.detected_ts) == (10.6, 10.7, 10.8)
    assert again.asks_taken is walked.asks_taken and again.net_profit is walked.net_profit
    assert hash(again) == hash(_restamp(walked, books["kraken"], 10.8))
    with pytest.raises(FrozenInstanceError):
        again.size = D(2)


def test_a_pair_scan_refuses_a_cross_type_that_does_not_end_with_its_stamps():
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class Unstamped:
        size: D
        detected_ts: float

    books = [core.COMPILED.Book(venue, "X") for venue in ("a", "b")]
    pairs = [None] * 4
    with pytest.raises(TypeError, match="does not end with the three stamps"):
        core.PairScan(books, [(1, 1), (1, 1)], pairs, pairs, pairs, None, None, D(1), Unstamped)


@pytest.mark.parametrize(
    ("ask", "bid", "size", "digits"),
    [
        # A notional of 28 digits: more than 64 bits, reported in integers.
        ("12345.123456789", "12445.123456789", "1234.12345678901", 28),
        # Fees on a notional of 37 digits do not fit 128 bits: the `Decimal` report does it.
        ("999999999.999999999", "1999999999.999999999", "99999999.99999999999", 37),
    ],
)
def test_long_numbers_are_reported_alike_in_integers_or_by_the_decimal_code(ask, bid, size, digits):
    """The compiled scan's cross is the one the `Decimal` loop gives, digit for digit, where
    its integers hold the numbers and where they do not."""
    from trading.detector import pair_scan

    books = {venue: core.COMPILED.Book(venue, "X") for venue in ("kraken", "coinbase")}
    books["kraken"].load([], [(D(ask), D(size), None)])
    books["coinbase"].load([(D(bid), D(size), None)], [])
    for book in books.values():
        book.stamp(None, 10.0)
    fees = {"kraken": D("0.0026"), "coinbase": D("0.0026")}
    lots = {"kraken": D("1E-11"), "coinbase": D("1E-11")}
    key = OpportunityKey("X", "kraken", "coinbase")

    scanned = pair_scan("X", books, fees, lots, D(0), None).scan(10.0, 1.0, None)[key]
    plain = find_opportunities(
        "X", books, fees, lots, min_profit_bps=D(0), max_book_age=1.0, now=10.0
    )[key]

    assert scanned == plain and cross_text(scanned) == cross_text(plain)
    assert len(str(scanned.buy_notional).replace(".", "")) == digits
