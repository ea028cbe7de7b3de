"""Writing opportunity lifecycles: one row per lifecycle, saved in batches off the hot path."""

import logging
from datetime import UTC, datetime

from django.db import transaction

from markets.bookcache import BookCacheUnavailable
from risk.models import RiskProfile
from risk.selectors import load_limits
from trading.execution.desk import candidate_of, desk_state, engine_refusals, record_refusals
from trading.lifecycle import EventKind, OpportunityEvent, OpportunityKey
from trading.models import Opportunity
from trading.tasks import request_execution

log = logging.getLogger(__name__)

# The refusal recorded on each opportunity the engine could not check because the book cache
# did not answer: counted like any other reason, so none of them disappears unexplained.
BOOK_CACHE_UNAVAILABLE = "book cache unavailable"

UPDATED_FIELDS = [
    "state", "closed_at", "close_reason", "size", "buy_vwap", "sell_vwap", "gross_profit", "fees",
    "net_profit", "net_bps", "levels_walked", "buy_limit", "sell_limit", "exchange_ts",
    "received_at", "detected_at",
    "peak_net_profit", "peak_net_bps", "updates",
]  # fmt: skip


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _apply(row: Opportunity, event: OpportunityEvent) -> None:
    cross = event.cross
    row.size, row.buy_vwap, row.sell_vwap = cross.size, cross.buy_vwap, cross.sell_vwap
    row.gross_profit, row.fees, row.net_profit = cross.gross_profit, cross.fees, cross.net_profit
    row.net_bps = round(cross.margin_bps, 4)
    row.levels_walked = {"asks": len(cross.asks_taken), "bids": len(cross.bids_taken)}
    row.buy_limit, row.sell_limit = cross.buy_limit, cross.sell_limit
    row.exchange_ts, row.received_at = _when(cross.exchange_ts), _when(cross.received_ts)
    row.detected_at = _when(cross.detected_ts)
    row.peak_net_profit = event.peak_net_profit
    row.peak_net_bps = max(row.peak_net_bps or row.net_bps, row.net_bps)
    row.updates = event.updates
    if event.kind == EventKind.CLOSE:
        row.state = Opportunity.State.CLOSED
        row.closed_at = _when(event.closed_at)
        row.close_reason = event.close_reason[:40]


class OpportunityWriter:
    """Turns lifecycle events into rows; remembers each open lifecycle's row between batches."""

    def __init__(self, exchange_ids: dict[str, int], market_ids: dict[str, int]) -> None:
        self.exchange_ids = exchange_ids
        self.market_ids = market_ids
        self.rows: dict[OpportunityKey, Opportunity] = {}

    def save(self, events: list[OpportunityEvent]) -> list[int]:
        """Write a batch in one transaction; return the ids of the lifecycles it opened."""
        new: list[Opportunity] = []
        changed: dict[int, Opportunity] = {}
        for event in events:
            key = event.key
            if key.market not in self.market_ids:
                continue  # replayed under a venue's own symbol: no market row to attach to
            if event.kind == EventKind.OPEN:
                row = self._new_row(event)
                new.append(row)
                self.rows[key] = row
            row = self.rows.get(key)
            if row is None:
                continue
            _apply(row, event)
            if row.pk is not None:
                changed[row.pk] = row
            if event.kind == EventKind.CLOSE:
                del self.rows[key]
        with transaction.atomic():
            Opportunity.objects.bulk_create(new)
            Opportunity.objects.bulk_update(changed.values(), UPDATED_FIELDS)
        return [row.pk for row in new if row.state == Opportunity.State.OPEN]

    def _new_row(self, event: OpportunityEvent) -> Opportunity:
        key = event.key
        return Opportunity(
            market_id=self.market_ids[key.market],
            buy_exchange_id=self.exchange_ids[key.buy_venue],
            sell_exchange_id=self.exchange_ids[key.sell_venue],
            opened_at=_when(event.opened_at),
        )


def close_stale_rows(reason: str = "engine restart") -> int:
    """Close rows a previous engine left open (it stopped without closing them)."""
    return Opportunity.objects.filter(state=Opportunity.State.OPEN).update(
        state=Opportunity.State.CLOSED, closed_at=datetime.now(UTC), close_reason=reason
    )


def execute_opened(opportunity_ids: list[int]) -> int:
    """The engine's automatic path: enqueue each new opportunity the active profile allows.

    Refusals are counted on the opportunity; the execution task checks again against the
    database before it places anything. Returns how many were enqueued.
    """
    mode = RiskProfile.objects.execution_mode()
    rows = Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange")
    opportunities = list(rows.filter(id__in=opportunity_ids))
    try:
        refusals = _refusals(opportunities, mode)
    except BookCacheUnavailable as exc:
        log.warning(
            "%d opportunities not executed: book cache unavailable (%s)", len(opportunities), exc
        )
        refusals = {opportunity.id: [BOOK_CACHE_UNAVAILABLE] for opportunity in opportunities}
    enqueued = 0
    with transaction.atomic():
        for opportunity in opportunities:
            reasons = refusals[opportunity.id]
            if reasons:
                record_refusals(opportunity.id, reasons)
            else:
                request_execution(opportunity, mode=mode)
                enqueued += 1
    return enqueued


def _refusals(opportunities: list[Opportunity], mode: str) -> dict[int, list[str]]:
    """Why each opportunity may not be executed automatically now ([]: it may).

    Reads the desk's state and each venue's book from the book cache before anything is written.
    """
    limits, state = load_limits(mode), desk_state(mode)
    return {
        opportunity.id: engine_refusals(candidate_of(opportunity), limits=limits, state=state)
        for opportunity in opportunities
    }
