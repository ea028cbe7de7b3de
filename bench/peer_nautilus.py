"""Nautilus Trader's `OrderBook` (L2_MBP, its Rust book), fed one `OrderBookDelta` per level.

Run in its own venv (requirements-peers-nautilus.txt) by bench/peers.py. Frames are decoded with
msgspec (as Nautilus's adapters do; Kraken's JSON numbers kept as their text), each level becomes
`Price.from_str` / `Quantity.from_str` in a `BookOrder`, and an UPDATE or DELETE delta is applied
(a snapshot: CLEAR, then the levels). The book checks nothing: no sequence, no checksum. With
`--cut` the Kraken sides are cut to the 25 levels on the wire after each frame that added one
(Kraken sends no delete for a level pushed out of the window; the book does not know the depth).
"""

import sys

import msgspec
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder, OrderBookDelta
from nautilus_trader.model.enums import BookAction, BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from bench.peer_common import Record, price_text, serve

KRAKEN_DEPTH = 25
BUY, SELL = OrderSide.BUY, OrderSide.SELL
UPDATE, DELETE, CLEAR = BookAction.UPDATE, BookAction.DELETE, BookAction.CLEAR
ZERO = Quantity.from_int(0)


class NautilusPeer:
    def __init__(self, cut: bool) -> None:
        self.cut = cut
        self.books: dict[str, OrderBook] = {}
        self.ids: dict[str, InstrumentId] = {}
        self.plain = msgspec.json.Decoder()
        self.texts = msgspec.json.Decoder(float_hook=str)
        self.cuts = 0

    def book(self, key: str, fresh: bool) -> tuple[OrderBook, InstrumentId] | None:
        book = self.books.get(key)
        if book is None and not fresh:
            return None
        instrument = self.ids.get(key)
        if instrument is None:
            venue, symbol = key.split(":")
            clean = symbol.replace("/", "").replace("-", "")
            instrument = self.ids[key] = InstrumentId.from_str(f"{clean}.{venue.upper()}")
        if book is None:
            book = self.books[key] = OrderBook(instrument, BookType.L2_MBP)
        return book, instrument

    @staticmethod
    def clear(book: OrderBook, instrument: InstrumentId, sequence: int) -> None:
        book.apply_delta(OrderBookDelta(instrument, CLEAR, None, 0, sequence, 0, 0))

    @staticmethod
    def apply(book, instrument, side, levels, sequence, ts) -> int:
        """One delta per (price, size) text pair; returns how many levels were added."""
        added = 0
        for price, size in levels:
            quantity = Quantity.from_str(size)
            if quantity.raw:
                order = BookOrder(side, Price.from_str(price), quantity, 0)
                book.apply_delta(OrderBookDelta(instrument, UPDATE, order, 0, sequence, ts, ts))
                added += 1
            else:
                order = BookOrder(side, Price.from_str(price), ZERO, 0)
                book.apply_delta(OrderBookDelta(instrument, DELETE, order, 0, sequence, ts, ts))
        return added

    def run(self, records: list[Record]) -> None:
        handlers = {"coinbase": self.coinbase, "kraken": self.kraken, "binance": self.binance}
        for venue, kind, frame, symbol in records:
            if kind is None:
                handlers[venue](frame)
            elif kind == "rest":
                self.snapshot(frame, symbol)

    def coinbase(self, frame: str) -> None:
        msg = self.plain.decode(frame)
        if msg.get("channel") != "l2_data":
            return
        sequence = msg["sequence_num"]
        for event in msg["events"]:
            snapshot = event["type"] == "snapshot"
            found = self.book("coinbase:" + event["product_id"], snapshot)
            if found is None:
                continue
            book, instrument = found
            if snapshot:
                self.clear(book, instrument, sequence)
            bids, asks = [], []
            for level in event["updates"]:
                side = bids if level["side"] == "bid" else asks
                side.append((level["price_level"], level["new_quantity"]))
            self.apply(book, instrument, BUY, bids, sequence, 0)
            self.apply(book, instrument, SELL, asks, sequence, 0)

    def kraken(self, frame: str) -> None:
        msg = self.texts.decode(frame)
        if msg.get("channel") != "book":
            return
        snapshot = msg["type"] == "snapshot"
        for update in msg["data"]:
            found = self.book("kraken:" + update["symbol"], snapshot)
            if found is None:
                continue
            book, instrument = found
            if snapshot:
                self.clear(book, instrument, 0)
            for side, key in ((BUY, "bids"), (SELL, "asks")):
                levels = [(level["price"], level["qty"]) for level in update[key]]
                if self.apply(book, instrument, side, levels, 0, 0) and self.cut:
                    self.cut_side(book, instrument, side)

    def cut_side(self, book: OrderBook, instrument: InstrumentId, side: OrderSide) -> None:
        levels = book.bids() if side == BUY else book.asks()
        for level in levels[KRAKEN_DEPTH:]:
            order = BookOrder(side, level.price, ZERO, 0)
            book.apply_delta(OrderBookDelta(instrument, DELETE, order, 0, 0, 0, 0))
            self.cuts += 1

    def snapshot(self, frame: str, symbol: str) -> None:
        body = self.plain.decode(frame)
        book, instrument = self.book("binance:" + symbol, True)
        sequence = body["lastUpdateId"]
        self.clear(book, instrument, sequence)
        self.apply(book, instrument, BUY, body["bids"], sequence, 0)
        self.apply(book, instrument, SELL, body["asks"], sequence, 0)

    def binance(self, frame: str) -> None:
        data = self.plain.decode(frame)["data"]
        found = self.book("binance:" + data["s"], False)
        if found is None:  # before its REST snapshot
            return
        book, instrument = found
        sequence, ts = data["u"], data["E"] * 1_000_000
        self.apply(book, instrument, BUY, data["b"], sequence, ts)
        self.apply(book, instrument, SELL, data["a"], sequence, ts)

    def tops(self) -> dict[str, dict[str, str | None]]:
        return {
            key: {
                "bid": price_text(book.best_bid_price()),
                "ask": price_text(book.best_ask_price()),
            }
            for key, book in sorted(self.books.items())
        }

    def counters(self) -> dict[str, int]:
        return {"kraken_levels_cut": self.cuts}


if __name__ == "__main__":
    cut = "--cut" in sys.argv[1:]
    serve(lambda: NautilusPeer(cut), [arg for arg in sys.argv[1:] if arg != "--cut"])
