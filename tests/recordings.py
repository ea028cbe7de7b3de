"""Where the tests' recorded exchange traffic lives: the repository's own copy, nothing beside it."""

from pathlib import Path

# cryptofeed's recordings of real venue traffic (tests/data/cryptofeed/LICENSE.cryptofeed).
CRYPTOFEED = Path(__file__).resolve().parent / "data" / "cryptofeed"
