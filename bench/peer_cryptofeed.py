"""cryptofeed's own Kraken v2, Coinbase (Advanced Trade) and Binance feed handlers, offline.

Run in its own venv (requirements-peers-cryptofeed.txt) by bench/peers.py. Each frame goes to the
feed's `message_handler` (msgspec decode with `Decimal` numbers, its handlers, bmoscon's C book,
`book_callback` with its crossed-book test), awaited in one event loop as a live connection
would; no callback is registered. Its checks are on: Kraken's CRC32 (`BadChecksum`), Coinbase's
`sequence_num` (`MissingSequenceNumber`), Binance's update ids against the REST snapshot (which
its handler fetches at the first diff: here `http_conn.read` answers with the recorded body).
Symbols are set up front (what `load_symbols` would fetch), venue symbols as their own names.
"""

import asyncio
import json
import logging

from cryptofeed.exceptions import BadChecksum, MissingSequenceNumber
from cryptofeed.exchanges import Binance, Coinbase, Kraken
from cryptofeed.symbols import Symbols

from bench.peer_common import Record, price_text, serve

KRAKEN_DEPTH = 25


class Connection:
    """What the handlers read of a connection: its id (Coinbase keys its sequence by it)."""

    uuid = "bench"


class CryptofeedPeer:
    def __init__(self) -> None:
        self.feeds: dict = {}
        self.stats = {"checksum_failed": 0, "gaps": 0, "other_errors": 0}

    def prepare(self, records: list[Record]) -> None:
        """Symbols from the recording (not timed per frame: a live feed loads them once)."""
        symbols: dict[str, set[str]] = {"coinbase": set(), "kraken": set(), "binance": set()}
        rest: dict[str, str] = {}
        for venue, kind, frame, symbol in records:
            if kind == "rest":
                rest.setdefault(symbol, frame)
                symbols[venue].add(symbol)
        for venue, kind, frame, _ in records:
            if kind == "sent" and venue in ("coinbase", "kraken"):
                sent = json.loads(frame)
                names = sent.get("product_ids") or sent.get("params", {}).get("symbol") or []
                symbols[venue].update(names)
        for feed_type, venue in ((Coinbase, "coinbase"), (Kraken, "kraken"), (Binance, "binance")):
            Symbols.set(feed_type.id, {name: name for name in symbols[venue]}, {})
        self.feeds = {
            "coinbase": Coinbase(),
            "kraken": Kraken(max_depth=KRAKEN_DEPTH),
            "binance": Binance(),
        }
        for feed in self.feeds.values():
            feed.checksum_validation = feed.provides_checksum

        async def read(url: str, **kwargs) -> str:
            symbol = url.split("symbol=")[1].split("&")[0]
            return rest[symbol]

        self.feeds["binance"].http_conn.read = read

    def run(self, records: list[Record]) -> None:
        asyncio.run(self.replay(records))

    async def replay(self, records: list[Record]) -> None:
        handlers = {venue: feed.message_handler for venue, feed in self.feeds.items()}
        conn = Connection()
        stats = self.stats
        ts = 0.0
        for venue, kind, frame, _ in records:
            if kind is not None:  # the Binance snapshot is fetched by the handler itself
                continue
            try:
                await handlers[venue](frame, conn, ts)
            except BadChecksum:
                stats["checksum_failed"] += 1
            except MissingSequenceNumber:
                stats["gaps"] += 1
            except Exception:
                stats["other_errors"] += 1

    def tops(self) -> dict[str, dict[str, str | None]]:
        tops = {}
        for venue, feed in self.feeds.items():
            for symbol, book in feed._l2_book.items():
                bids, asks = book.book.bids, book.book.asks
                tops[f"{venue}:{symbol}"] = {
                    "bid": price_text(bids.index(0)[0]) if len(bids) else None,
                    "ask": price_text(asks.index(0)[0]) if len(asks) else None,
                }
        return dict(sorted(tops.items()))

    def counters(self) -> dict[str, int]:
        return dict(self.stats)


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # its "missing update" warnings are counted, not printed
    serve(CryptofeedPeer)
