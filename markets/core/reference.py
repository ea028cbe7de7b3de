"""The plain-Python reference of the compiled core: the venues' level parsing into `WireLevel`s.

`markets.book.Book` is the reference book; these functions are the reference of `_book.pyx`'s
`parse_pairs`, `parse_kraken` and `parse_coinbase`, and take the same decoded JSON.
"""

from markets.book import Book, WireLevel, checksum_fragment, parse_level

__all__ = ["Book", "parse_coinbase", "parse_kraken", "parse_pairs"]


def parse_pairs(levels: list) -> list[WireLevel]:
    """Binance's `[[price, qty], ...]` (REST snapshot and diffs) into levels."""
    return [(*parse_level(price, qty), None) for price, qty in levels]


def _lexeme(value: object) -> object:
    """A JSON number's text: integers are the one kind the decoder hands over as numbers."""
    return str(value) if type(value) is int else value


def parse_kraken(levels: list) -> list[WireLevel]:
    """Kraken v2's `{price, qty}` objects into levels carrying their checksum fragment."""
    parsed: list[WireLevel] = []
    for level in levels:
        price, qty = _lexeme(level["price"]), _lexeme(level["qty"])
        parsed.append((*parse_level(price, qty), checksum_fragment(price, qty)))
    return parsed


def parse_coinbase(updates: list) -> tuple[list[WireLevel], list[WireLevel]]:
    """A Coinbase event's `updates` into validated bid and ask levels; raise on anything odd."""
    bids: list[WireLevel] = []
    asks: list[WireLevel] = []
    for update in updates:
        price, size = parse_level(update["price_level"], update["new_quantity"])
        side = update["side"]
        if side == "bid":
            bids.append((price, size, None))
        elif side == "offer":
            asks.append((price, size, None))
        else:
            raise ValueError(f"unknown side {side!r}")
    return bids, asks
