"""The recorded-feed file: one JSON line per frame received, sent, or fetched over REST.

`{"ts": <receive time, epoch seconds>, "venue": "<slug>", "frame": "<raw text>"}` plus
`"kind": "sent"` or `"kind": "rest"` (with the request's `"url"`); gzip when the path ends in .gz.
Received frames also carry the connection `"url"` so a replay can rebuild the subscriptions.
"""

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import orjson

from markets.venues.feed import NO_CHANGE, Feed


def open_text(path: str | Path, mode: str) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


class Recorder:
    """Appends frames to a recording; the connection manager's `on_frame` hook."""

    def __init__(self, path: str | Path) -> None:
        self.file = open_text(path, "w")
        self.urls: dict[str, str] = {}

    def __call__(self, venue: str, text: str, ts: float, kind: str, url: str) -> None:
        record: dict = {"ts": ts, "venue": venue, "frame": text}
        if kind != "recv":
            record["kind"] = kind
            record["url"] = url
        elif self.urls.get(venue) != url:  # the connection URL, once per change
            self.urls[venue] = url
            record["url"] = url
        self.file.write(orjson.dumps(record).decode() + "\n")

    def close(self) -> None:
        self.file.close()


def read_records(path: str | Path) -> Iterator[dict]:
    """Yield each record of a recording; a line that is not a JSON object raises ValueError."""
    with open_text(path, "r") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from exc
            if not isinstance(record, dict) or "frame" not in record or "venue" not in record:
                raise ValueError(f"{path}:{number}: a record needs 'venue' and 'frame'")
            yield record


def apply_record(feed: Feed, kind: str | None, frame: str, url: str, ts: float) -> Sequence[str]:
    """One recorded frame into its venue's feed as it came: a WebSocket frame (kind None) or a
    REST snapshot body ("rest"); return the markets whose books changed. What we sent changes
    nothing, and the feed's resync requests are dropped: the recording holds what followed."""
    if kind is None:
        changed = feed.handle(frame, ts)
    elif kind == "rest":
        market = feed.snapshot_market(url)
        changed = feed.handle_snapshot(market, frame, ts) if market else NO_CHANGE
    else:
        return NO_CHANGE
    if feed.actions:
        feed.actions.clear()
    return changed
