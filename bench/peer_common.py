"""What every peer runner shares: the frames in memory, the line protocol, the tops it reports.

A runner is started as `python -m bench.peer_<name> FILE` in the peer's own venv (so this module
imports nothing but the standard library). It reads FILE into memory once, says `ready`, then
answers each `run` line on stdin with one JSON line: the seconds its replay of every record took
(fresh books each time), the frames, its checks' counters and each book's top at every checkpoint
(after each tenth of the records, the last one at the end). `quit` ends.
"""

import gc
import json
import sys
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

# One record as the runners hold it: venue, kind (None for a received frame, "rest", "sent"),
# the frame's text, and for a REST answer the symbol it is for.
Record = tuple[str, str | None, str, str]


def load(path: str) -> list[Record]:
    """Every record of the recording, in order, with a REST answer's symbol pulled out first."""
    records: list[Record] = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            kind = record.get("kind")
            symbol = ""
            if kind == "rest":
                symbol = parse_qs(urlsplit(record["url"]).query)["symbol"][0]
            records.append((record["venue"], kind, record["frame"], symbol))
    return records


def price_text(value: Any) -> str | None:
    """A price as plain decimal text without trailing zeros, so every peer's tops compare."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(number.normalize(), "f")
    return text


CHECKPOINTS = 10


def spans(count: int, parts: int = CHECKPOINTS) -> list[tuple[int, int]]:
    """The records' slices between checkpoints: the harness's truth is taken at the same ends."""
    ends = sorted({count * part // parts for part in range(1, parts + 1)} - {0})
    return list(zip([0, *ends[:-1]], ends, strict=True))


class Peer(Protocol):
    """One replay of every record through a peer's books, from empty books, a slice at a time."""

    def run(self, records: list[Record]) -> None:
        """Apply the next slice of records (the books carry on from the slice before)."""
        ...

    def tops(self) -> dict[str, dict[str, str | None]]:
        """`venue:symbol` (the venue's own symbol) -> {"bid": text, "ask": text}."""
        ...

    def counters(self) -> dict[str, int]: ...

    # Optional: `prepare(records)`, called before the clock starts (symbols, connections).


def frames_in(records: Iterable[Record]) -> int:
    return sum(1 for record in records if record[1] is None)


def serve(make: Callable[[], Peer], argv: list[str] | None = None) -> None:
    """The runner's main loop: load, say ready, answer `run` until `quit` or end of input."""
    argv = sys.argv[1:] if argv is None else argv
    records = load(argv[0])
    frames = frames_in(records)
    slices = [records[start:end] for start, end in spans(len(records))]
    gc.collect()
    gc.freeze()  # as hot_path does: the held frames are not the peer's garbage to scan
    reply({"ready": True, "frames": frames})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "run":
            reply({"error": f"unknown command {command!r}"})
            continue
        gc.collect()
        peer = make()
        prepare = getattr(peer, "prepare", None)
        if prepare is not None:  # what a live client does once, before its first frame
            prepare(records)
        seconds, tops = 0.0, []
        try:
            for piece in slices:
                started = time.perf_counter()
                peer.run(piece)
                seconds += time.perf_counter() - started
                tops.append(peer.tops())
        except Exception as error:  # a peer that breaks says how, and the harness goes on
            reply({"error": f"{type(error).__name__}: {error}"})
            continue
        reply({"seconds": seconds, "frames": frames, "counters": peer.counters(), "tops": tops})


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
