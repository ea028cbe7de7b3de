"""bmoscon's `order-book` (C SortedDict book) with msgspec, its Kraken CRC and the sequence checks.

Run in its own venv (requirements-peers-orderbook.txt) by bench/peers.py. The handlers do what
cryptofeed's do with this book, without the feed machinery around them: decode (numbers as
`Decimal`), file each level, check Coinbase's `sequence_num`, Binance's update ids against the
REST snapshot, and each Kraken frame's CRC32 with the book's own `checksum()`.
"""

from decimal import Decimal

import msgspec
from order_book import OrderBook

from bench.peer_common import Record, price_text, serve

KRAKEN_DEPTH = 25  # what the project's Kraken feed subscribes on the wire for depth 10


class OrderBookPeer:
    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}
        self.plain = msgspec.json.Decoder()
        self.decimals = msgspec.json.Decoder(float_hook=Decimal)
        self.sequence: int | None = None
        self.last_update: dict[str, int] = {}
        self.stats = dict.fromkeys(
            ("checksum_ok", "checksum_failed", "gaps", "stale_skipped", "malformed"), 0
        )

    def run(self, records: list[Record]) -> None:
        coinbase, kraken, binance, snapshot = (
            self.coinbase,
            self.kraken,
            self.binance,
            self.snapshot,
        )
        handlers = {"coinbase": coinbase, "kraken": kraken, "binance": binance}
        for venue, kind, frame, symbol in records:
            if kind is None:
                handlers[venue](frame)
            elif kind == "rest":
                snapshot(frame, symbol)

    def coinbase(self, frame: str) -> None:
        msg = self.plain.decode(frame)
        sequence = msg.get("sequence_num")
        if sequence is not None:
            if self.sequence is not None and sequence != self.sequence + 1:
                self.stats["gaps"] += 1
            self.sequence = sequence
        if msg.get("channel") != "l2_data":
            return
        books = self.books
        for event in msg["events"]:
            key = "coinbase:" + event["product_id"]
            if event["type"] == "snapshot":
                book = books[key] = OrderBook()
            else:
                book = books.get(key)
                if book is None:
                    continue
            bids, asks = book.bids, book.asks
            for level in event["updates"]:
                side = bids if level["side"] == "bid" else asks
                price = Decimal(level["price_level"])
                size = Decimal(level["new_quantity"])
                if size:
                    side[price] = size
                elif price in side:
                    del side[price]

    def kraken(self, frame: str) -> None:
        msg = self.decimals.decode(frame)
        if msg.get("channel") != "book":
            return
        books = self.books
        snapshot = msg["type"] == "snapshot"
        for update in msg["data"]:
            key = "kraken:" + update["symbol"]
            if snapshot:
                book = books[key] = OrderBook(
                    max_depth=KRAKEN_DEPTH, max_depth_strict=True, checksum_format="KRAKEN"
                )
            else:
                book = books.get(key)
                if book is None:
                    continue
            for side, levels in ((book.bids, update["bids"]), (book.asks, update["asks"])):
                for level in levels:
                    price, size = level["price"], level["qty"]
                    if size:
                        side[price] = size
                    elif price in side:
                        del side[price]
            checksum = update.get("checksum")
            if checksum is not None:
                if book.checksum() == checksum:
                    self.stats["checksum_ok"] += 1
                else:
                    self.stats["checksum_failed"] += 1

    def snapshot(self, frame: str, symbol: str) -> None:
        body = self.plain.decode(frame)
        book = self.books["binance:" + symbol] = OrderBook()
        for price, size in body["bids"]:
            book.bids[Decimal(price)] = Decimal(size)
        for price, size in body["asks"]:
            book.asks[Decimal(price)] = Decimal(size)
        self.last_update[symbol] = body["lastUpdateId"]

    def binance(self, frame: str) -> None:
        data = self.plain.decode(frame)["data"]
        symbol = data["s"]
        last = self.last_update.get(symbol)
        if last is None:  # before its REST snapshot: a live client buffers it; it is older anyway
            return
        first, final = data["U"], data["u"]
        if final <= last:
            self.stats["stale_skipped"] += 1
            return
        if not first <= last + 1 <= final:
            self.stats["gaps"] += 1
        self.last_update[symbol] = final
        book = self.books["binance:" + symbol]
        for side, levels in ((book.bids, data["b"]), (book.asks, data["a"])):
            for price_text_, size_text in levels:
                price, size = Decimal(price_text_), Decimal(size_text)
                if size:
                    side[price] = size
                elif price in side:
                    del side[price]

    def tops(self) -> dict[str, dict[str, str | None]]:
        return {
            key: {
                "bid": price_text(book.bids.index(0)[0]) if len(book.bids) else None,
                "ask": price_text(book.asks.index(0)[0]) if len(book.asks) else None,
            }
            for key, book in sorted(self.books.items())
        }

    def counters(self) -> dict[str, int]:
        return dict(self.stats)


if __name__ == "__main__":
    serve(OrderBookPeer)
