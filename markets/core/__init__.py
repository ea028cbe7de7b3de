"""The per-frame core: compiled (`_book.pyx`, built by `make setup`) or the plain-Python reference.

Both offer the same four names, `Book`, `parse_pairs`, `parse_kraken` and `parse_coinbase`: the
venue feeds parse a side's decoded levels with the venue's function and hand the result to the
same core's `Book.load`/`apply`. The books read the same either way (exact `Decimal` levels,
best first); the differential tests (`tests/markets/test_core.py`) hold the two to that. The
compiled core also offers `CoinbaseWire`, `KrakenWire` and `BinanceWire` (a venue's usual frames
from their text into the books, every other frame handed to the feed's own `handle`; None on the
reference), `TopGate`, the detector's top-of-book prefilter over one market's books,
`PairScan`, the detector's pair loop, walk memo, fill and report over them, and `SlotsNew`, the
frozen slots dataclasses (`Cross`, the lifecycle events) built in C (`new_of`).

A feed takes the core that is active when it is built (`active()`): the compiled one when the
extension is built, unless `ARB_PURE_CORE=1`. A checkout whose extension was never built runs on
the reference, slower, and says so once in the log; `make setup` builds it (it needs a C
compiler, and stops with what to install when there is none).
"""

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType, SimpleNamespace

from markets.core import reference

log = logging.getLogger(__name__)


def _core(name: str, module: ModuleType) -> SimpleNamespace:
    """The names a feed uses, taken from one implementation. The three `*Wire` handlers take
    a venue's usual frames straight from their text (None on the reference: none there)."""
    names = ("Book", "parse_pairs", "parse_kraken", "parse_coinbase")
    wires = ("CoinbaseWire", "KrakenWire", "BinanceWire")
    return SimpleNamespace(
        name=name,
        **{attr: getattr(module, attr) for attr in names},
        **{attr: getattr(module, attr, None) for attr in wires},
    )


REFERENCE = _core("reference", reference)
try:
    from markets.core import _book
except ImportError:  # not built: `make setup` builds it
    COMPILED = None
    WALK = None
    TopGate = None
    PairScan = None
    SlotsNew = None
else:
    COMPILED = _core("compiled", _book)
    # The detector's depth walk on two compiled books' integers: (level iterator type, walk).
    WALK = (_book.LevelIter, _book.walk)
    # The detector's top-of-book prefilter over one market's compiled books.
    TopGate = _book.TopGate
    # The detector's pair loop and walk memo over one market's compiled books.
    PairScan = _book.PairScan
    # Frozen slots dataclasses built in C (see `new_of`).
    SlotsNew = _book.SlotsNew

_active = REFERENCE if COMPILED is None or os.environ.get("ARB_PURE_CORE") == "1" else COMPILED
if COMPILED is None:
    log.warning(
        "markets.core: the compiled core is not built; running on the plain-Python "
        "reference (run `make setup` to build it)"
    )


def new_of[T](cls: type[T]) -> Callable[..., T]:
    """A builder of `cls` (a frozen slots dataclass whose `__init__` only stores its fields)
    from every field's value, positionally: the compiled `SlotsNew` when built, else `cls`."""
    return cls if SlotsNew is None else SlotsNew(cls)


def active() -> SimpleNamespace:
    """The core new feeds use."""
    return _active


@contextmanager
def using(core: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """Build feeds on `core` inside the block (the differential tests run both side by side)."""
    global _active
    previous, _active = _active, core
    try:
        yield core
    finally:
        _active = previous
