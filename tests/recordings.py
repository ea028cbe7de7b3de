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
