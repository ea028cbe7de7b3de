"""Reads that the fragments of one push share.

The notices the engine sends together re-render the spread tables, the status bar, the open
opportunities and the venue health at once, and each read the active risk profiles, the kill
switch, the open opportunities, the listings and the venues: 21 queries for one push, most of
them the same few, and the ORM's work per query was most of a render. Within one push
(`snapshot`, entered for each fragment with the push's publish time) each such read is made
once, by the first fragment that needs it, after the notices arrived, so it sees everything
committed before they were sent; outside a push (a page request) each read is made afresh.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator

from django.db import models

from markets.models import Exchange, Listing
from risk.models import KillSwitch, RiskProfile, execution_mode_of
from trading.models import Opportunity

# What the spread tables, the status bar and the open opportunities read of one (the walk's
# levels and the refusals were most of the row's decoding).
OPEN_FIELDS = (
    *("state", "opened_at", "size", "net_profit", "net_bps"),
    *("market__symbol", "buy_exchange__name", "sell_exchange__name"),
)
KEEP = 4  # snapshots of recent pushes kept by a render thread (pushes may interleave)
_state = threading.local()


@contextlib.contextmanager
def snapshot(ident: object) -> Iterator[None]:
    """Share the reads made in the block with every block of the same `ident` on this thread."""
    snapshots = _state.__dict__.setdefault("snapshots", {})
    memo = snapshots.get(ident)
    if memo is None:
        memo = snapshots[ident] = {}
        while len(snapshots) > KEEP:
            del snapshots[next(iter(snapshots))]
    _state.memo = memo
    try:
        yield
    finally:
        _state.memo = None


def _shared(name: str, read: Callable[[], object]):
    memo = getattr(_state, "memo", None)
    if memo is None:
        return read()
    if name not in memo:
        memo[name] = read()
    return memo[name]


def active_profiles() -> dict[str, RiskProfile]:
    """The active risk profile of each mode that has one."""
    return _shared("profiles", RiskProfile.objects.actives)


def kill_switch() -> KillSwitch | None:
    """The kill switch's row (None before it was first thrown)."""
    return _shared("kill switch", KillSwitch.objects.filter(pk=KillSwitch.SINGLETON_PK).first)


def execution_mode() -> str:
    """The mode the desk executes in (`risk.models.execution_mode_of`)."""
    return execution_mode_of(active_profiles())


def open_opportunities() -> list[Opportunity]:
    """Every open opportunity, newest first, with its market and venues (one per cross the
    engine holds open: a handful per market), as far as the pages show them: any other field
    read from them raises (FETCH_RAISE) rather than costing a query per row."""
    return _shared(
        "open",
        lambda: list(
            Opportunity.objects.filter(state=Opportunity.State.OPEN)
            .select_related("market", "buy_exchange", "sell_exchange")
            .only(*OPEN_FIELDS)
            .fetch_mode(models.FETCH_RAISE)
            .order_by("-opened_at", "-id")
        ),
    )


def listings() -> list[Listing]:
    """The enabled listings on enabled venues, with their market and venue, by venue slug."""
    return _shared(
        "listings",
        lambda: list(
            Listing.objects.filter(enabled=True, exchange__enabled=True)
            .select_related("exchange", "market")
            .order_by("exchange__slug", "id")
        ),
    )


def venues() -> list[tuple[int, str, str]]:
    """(pk, slug, name) of every venue."""
    return _shared("venues", lambda: list(Exchange.objects.values_list("pk", "slug", "name")))
