"""Opportunity lifecycles: each venue pair's stream of crosses as open, update and close events.

Pure: the caller feeds crosses and the clock, and persists or pushes the events it gets back.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from markets.core import new_of
from trading.detector import Cross, OpportunityKey


class EventKind(StrEnum):
    OPEN = "open"
    UPDATE = "update"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class OpportunityEvent:
    """One step of a lifecycle; `cross` is the last cross seen, `duration` is seconds since open."""

    kind: EventKind
    key: OpportunityKey
    cross: Cross
    opened_at: float
    closed_at: float | None
    duration: float
    peak_net_profit: Decimal
    updates: int
    close_reason: str = ""


# `OpportunityEvent(...)` from its 9 values in field order, in C when the core is built.
_new_event = new_of(OpportunityEvent)


@dataclass(slots=True)
class _Life:
    opened_at: float
    cross: Cross
    peak_net_profit: Decimal
    updates: int = 0

    def event(
        self, kind: EventKind, key: OpportunityKey, now: float, reason: str = ""
    ) -> OpportunityEvent:
        return _new_event(
            kind,
            key,
            self.cross,
            self.opened_at,
            now if kind is EventKind.CLOSE else None,  # closed_at
            now - self.opened_at,  # duration
            self.peak_net_profit,
            self.updates,
            reason,  # close_reason
        )


class OpportunityTracker:
    """The open lifecycles, keyed by (market, buy venue, sell venue)."""

    def __init__(self) -> None:
        self._open: dict[OpportunityKey, _Life] = {}

    def __contains__(self, key: OpportunityKey) -> bool:
        return key in self._open

    def observe(
        self, key: OpportunityKey, cross: Cross | None, now: float
    ) -> OpportunityEvent | None:
        """Return the event `cross` causes for `key`: None when nothing the caller shows changed.

        Pass None when the pair no longer crosses or either book is invalid or stale. A cross
        with the same size and net profit as the last one replaces it silently.
        """
        life = self._open.get(key)
        if cross is None or cross.size <= 0:
            return None if life is None else self._close(key, now, "gone")
        if life is None:
            life = self._open[key] = _Life(now, cross, cross.net_profit)
            return life.event(EventKind.OPEN, key, now)
        changed = (cross.size, cross.net_profit) != (life.cross.size, life.cross.net_profit)
        life.cross = cross
        if not changed:
            return None
        life.updates += 1
        life.peak_net_profit = max(life.peak_net_profit, cross.net_profit)
        return life.event(EventKind.UPDATE, key, now)

    def observe_market(
        self, market: str, crosses: Mapping[OpportunityKey, Cross], now: float
    ) -> list[OpportunityEvent]:
        """Observe each cross found for `market`; close its open pairs that are not among them."""
        events = [e for key, cross in crosses.items() if (e := self.observe(key, cross, now))]
        gone = [k for k in self._open if k.market == market and k not in crosses]
        return events + [self._close(key, now, "gone") for key in gone]

    def open_crosses(self) -> dict[OpportunityKey, Cross]:
        """Return the last cross of every open lifecycle."""
        return {key: life.cross for key, life in self._open.items()}

    def close_venue(self, venue: str, now: float, reason: str = "venue") -> list[OpportunityEvent]:
        """Close every lifecycle that buys or sells on `venue` (its feed dropped or resyncs)."""
        keys = [k for k in self._open if venue in (k.buy_venue, k.sell_venue)]
        return [self._close(key, now, reason) for key in keys]

    def close_all(self, now: float, reason: str) -> list[OpportunityEvent]:
        """Close every open lifecycle (shutdown, kill switch)."""
        return [self._close(key, now, reason) for key in list(self._open)]

    def _close(self, key: OpportunityKey, now: float, reason: str) -> OpportunityEvent:
        return self._open.pop(key).event(EventKind.CLOSE, key, now, reason)
