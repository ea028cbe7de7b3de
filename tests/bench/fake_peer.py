"""A stand-in peer runner for the harness tests: Coinbase's last snapshot top, nothing else."""

import sys

import orjson

from bench.peer_common import Record, price_text, serve


class LastSnapshotPeer:
    """Keeps each Coinbase product's best bid and ask from its snapshot, ignoring updates."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, str | None]] = {}
        self.frames = 0

    def run(self, records: list[Record]) -> None:
        for venue, kind, frame, _ in records:
            if kind is not None or venue != "coinbase":
                continue
            self.frames += 1
            for event in orjson.loads(frame).get("events", ()):
                if event.get("type") != "snapshot":
                    continue
                levels = event["updates"]
                bids = [level["price_level"] for level in levels if level["side"] == "bid"]
                asks = [level["price_level"] for level in levels if level["side"] != "bid"]
                self.books["coinbase:" + event["product_id"]] = {
                    "bid": price_text(max(bids, key=float)),
                    "ask": price_text(min(asks, key=float)),
                }

    def tops(self) -> dict[str, dict[str, str | None]]:
        return self.books

    def counters(self) -> dict[str, int]:
        return {"coinbase_frames": self.frames, "gaps": 2}


if __name__ == "__main__":
    if "--break" in sys.argv:
        raise SystemExit("this peer does not install here")
    serve(LastSnapshotPeer)
