"""Recovery: finish or fail the trades a stopped worker left behind, asking the venues first."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from risk.models import RiskProfile
from trading.execution.orders import VenueFor, call_venues, default_venue, order_request
from trading.execution.settlement import record_or_flag
from trading.execution.trades import settle_trade
from trading.models import Order, Trade

log = logging.getLogger(__name__)

# A trade untouched this long in pending/submitted has lost its worker (task time_limit is 120).
STUCK_AFTER_S = 150.0

# States a trade may be left in by a worker that stopped.
UNFINISHED = {
    Trade.State.PENDING,
    Trade.State.SUBMITTED,
    Trade.State.PARTIALLY_FILLED,
    Trade.State.FILLED,
    Trade.State.HEDGED,
    Trade.State.UNWOUND,
}


def recover_trades(
    *, older_than_s: float = STUCK_AFTER_S, venue_for: VenueFor = default_venue
) -> list[int]:
    """Finish or fail trades whose worker stopped: pending ones never placed an order (failed);
    submitted orders are looked up at the venue by client order id and recorded; partly filled
    trades are balanced again; balanced ones are closed. Returns the ids it touched.

    Passes overlap (beat, every worker's start, the engine's): each trade is claimed first and
    one another pass holds is skipped, not waited for. A trade whose recovery fails is logged
    and left for the next pass; the rest are still recovered."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stuck = Trade.objects.filter(
        state_changed_at__lte=cutoff, state__in=[*UNFINISHED]
    ).select_related("opportunity__market")
    touched = []
    for trade in stuck:
        try:
            with claimed(trade.pk) as won:
                if not won:
                    log.info("trade %s is being recovered by another pass", trade.pk)
                    continue
                touched.append(trade.pk)
                recover_trade(trade, cutoff=cutoff, venue_for=venue_for)
        except Exception:
            log.exception("trade %s: recovery failed, left for the next pass", trade.pk)
    return touched


@contextmanager
def claimed(trade_id: int) -> Iterator[bool]:
    """Whether this pass holds trade `trade_id`'s recovery claim, until the block ends.

    A Postgres session advisory lock (keyed by the trade id; the site takes no other): it holds
    across the venue calls with no transaction open, which is where a second pass would do harm
    (looking up an order the first is still sending, and taking "not found" for its fate), and
    it goes with the connection if the process dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [trade_id])
        won = cursor.fetchone()[0]
    try:
        yield won
    finally:
        if won:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [trade_id])


def recover_trade(trade: Trade, *, cutoff: datetime, venue_for: VenueFor) -> None:
    """Recover one claimed trade. A venue that has no record of an order created after `cutoff`
    is not its final word: the request may still be on its way (a slow client, Kraken's
    deadline), so the order stays submitted for a later pass."""
    trade.refresh_from_db()  # another pass may have finished it since the list was read
    if trade.state not in UNFINISHED:
        return
    if trade.state == Trade.State.PENDING:
        reason = "worker stopped before placing orders"
        if trade.advance(Trade.State.FAILED, detail=reason, failure_reason=reason):
            trade.orders.filter(state=Order.State.NEW).update(state=Order.State.CANCELED)
        return
    profile = RiskProfile.objects.active(trade.mode) or RiskProfile(mode=trade.mode)
    for order in trade.orders.filter(state=Order.State.SUBMITTED).select_related("exchange"):
        venue = venue_for(order.exchange, trade.mode, profile)
        report = call_venues([venue.find_order(order_request(order))])[0]
        if isinstance(report, Exception):
            log.warning("order %s lookup failed: %r", order.client_order_id, report)
            continue
        if report is None and order.created_at > cutoff:
            log.info("order %s not at the venue yet: looked up again later", order.client_order_id)
            continue
        record_or_flag(order, report, "" if report else "the venue has no such order")
    settle_trade(trade=trade, venue_for=venue_for, profile=profile)
