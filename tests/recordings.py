"""Where the tests' recorded exchange traffic lives: the repository's own copy."""

from pathlib import Path

# cryptofeed's recordings of real venue traffic (tests/data/cryptofeed/LICENSE.cryptofeed).
CRYPTOFEED = Path(__file__).resolve().parent / "data" / "cryptofeed"
# A small recording of the simulated venues (`run_arbitrage --record`), for replay tests.
REPLAY_SMALL = Path(__file__).resolve().parent / "data" / "replay_small.jsonl.gz"


def rest_body(name: str) -> bytes:
    """The REST answer recorded in CRYPTOFEED/`name` (its `<url> -> <ts>: <body>` line)."""
    line = (CRYPTOFEED / name).read_bytes().splitlines()[0]
    return line.split(b": ", 1)[1]


def received(name: str) -> list[tuple[float, str]]:
    """Every frame received in the websocket recording CRYPTOFEED/`name`: (receive time, text)."""
    frames = []
    for line in (CRYPTOFEED / name).read_text().splitlines():
        stamp, sep, text = line.partition(": ")
        if sep and " " not in stamp:  # `<ts>: <json>`; sent frames and REST lines name a URL
            frames.append((float(stamp), text))
    return frames
