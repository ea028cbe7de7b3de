"""Tests for markets.book: level mechanics, depth walks, integrity state and the Kraken checksum."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from markets.book import Book, checksum_fragment, parse_level
from tests.recordings import CRYPTOFEED

# Kraken's "Book checksum (WebSocket v2)" documentation example, as wire lexemes.
DOC_BIDS = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
DOC_ASKS = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]


def wire(levels: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal, str]]:
    return [(*parse_level(p, q), checksum_fragment(p, q)) for p, q in levels]


def d(text: str) -> Decimal:
    return Decimal(text)


def test_kraken_v2_documentation_example_checksums_to_3310070434():
    book = Book("kraken", "BTC-USD")
    book.load(wire(DOC_BIDS), wire(DOC_ASKS))

    assert book.checksum() == 3310070434


def test_checksum_fragment_keeps_trailing_zeros_and_strips_leading_ones():
    assert checksum_fragment("45285.2", "0.00100000") == "452852100000"
    assert checksum_fragment("0.000123", "0.0") == "123"


def test_best_levels_and_walk_are_best_first():
    book = Book("coinbase", "BTC-USD")
    book.load(wire([("100", "1"), ("101", "2"), ("99", "3")]), wire([("103", "1"), ("102", "5")]))

    assert book.best_bid() == (d("101"), d("2"))
    assert book.best_ask() == (d("102"), d("5"))
    assert [p for p, _ in book.bids()] == [d("101"), d("100"), d("99")]
    assert [p for p, _ in book.asks()] == [d("102"), d("103")]


def test_zero_size_removes_level_and_unknown_removal_is_harmless():
    book = Book("binance", "NKN-USDT")
    book.load(wire([("1.0", "1")]), wire([("2.0", "1")]))

    book.apply([(d("1.0"), d("0"), None), (d("0.5"), d("0"), None)], [])

    assert book.best_bid() is None
    assert book.best_ask() == (d("2.0"), d("1"))


def test_equal_prices_with_different_lexemes_are_one_level():
    book = Book("binance", "NKN-USDT")
    book.load(wire([("0.35130000", "1")]), [])

    book.set_bid(*parse_level("0.3513", "7"))

    assert list(book.bids()) == [(d("0.3513"), d("7"))]


def test_truncate_drops_worst_levels_of_each_side():
    book = Book("kraken", "BTC-USD", depth=2)
    book.load(wire(DOC_BIDS[:2]), wire(DOC_ASKS[:2]))

    book.apply(wire([("45283.45", "1.0")]), wire([("45285.1", "1.0")]))

    assert [str(p) for p, _ in book.bids()] == ["45283.5", "45283.45"]
    assert [str(p) for p, _ in book.asks()] == ["45285.1", "45285.2"]
    assert len(book) == 4


def test_crossed_detects_bid_at_or_above_ask():
    book = Book("coinbase", "BTC-USD")
    book.load(wire([("100", "1")]), wire([("101", "1")]))
    assert not book.crossed

    book.set_bid(d("101"), d("1"))

    assert book.crossed


def test_invalidate_and_snapshot_restore_validity():
    book = Book("coinbase", "BTC-USD")
    assert not book.valid

    book.load([], [], sequence=7)
    assert book.valid and book.sequence == 7
    book.invalidate("gap")

    assert not book.valid
    assert book.invalid_reason == "gap"


def test_top_is_a_plain_snapshot_with_stamps():
    book = Book("coinbase", "BTC-USD")
    book.load(wire([("100", "1"), ("99", "2")]), wire([("101", "3")]), sequence=5)
    book.stamp(1.5, 2.5)

    top = book.top(1)

    assert top["bids"] == [(d("100"), d("1"))]
    assert top["asks"] == [(d("101"), d("3"))]
    assert (top["sequence"], top["exchange_ts"], top["received_ts"]) == (5, 1.5, 2.5)


@pytest.mark.parametrize(
    ("price", "size"),
    [
        ("-1", "1"),
        ("NaN", "1"),
        ("1", "NaN"),
        ("1e40", "1"),
        ("Infinity", "1"),
        ("1", "-2"),
        ("abc", "1"),
        (1.5, "1"),
        ("0", "1"),
    ],
)
def test_parse_level_rejects_absurd_numbers(price, size):
    with pytest.raises(ValueError):
        parse_level(price, size)


def read_kraken_v1(path: Path):
    """Yield (pair, snapshot|None, asks, bids, checksum|None) from a recorded v1 book file."""
    for line in path.read_text().splitlines():
        if not line or not line[0].isdigit():
            continue
        msg = json.loads(line.split(": ", 1)[1])
        if not isinstance(msg, list):
            continue
        pair, parts = msg[-1], msg[1:-2]
        if "as" in parts[0]:
            yield pair, True, parts[0]["as"], parts[0]["bs"], None
            continue
        asks = [lvl for part in parts for lvl in part.get("a", [])]
        bids = [lvl for part in parts for lvl in part.get("b", [])]
        yield pair, False, asks, bids, parts[-1].get("c")


def v1_levels(levels: list[list[str]]) -> list[tuple[Decimal, Decimal, str]]:
    return wire([(lvl[0], lvl[1]) for lvl in levels])


def test_kraken_v1_recording_every_update_checksum_verifies():
    books: dict[str, Book] = {}
    ok = failed = 0

    for pair, snapshot, asks, bids, crc in read_kraken_v1(CRYPTOFEED / "KRAKEN.ws.50.0"):
        if snapshot:
            books[pair] = Book("kraken", pair, depth=1000)
            books[pair].load(v1_levels(bids), v1_levels(asks))
            continue
        books[pair].apply(v1_levels(bids), v1_levels(asks))
        if crc is not None:
            if books[pair].checksum() == int(crc):
                ok += 1
            else:
                failed += 1

    assert (ok, failed) == (4269, 0)
    assert not any(book.crossed for book in books.values())
