"""Recovery: finish or fail the trades a stopped worker left behind, asking the venues first."""

import logging
from datetime import timedelta

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
    trades are balanced again; balanced ones are closed. Returns the ids it touched."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stuck = Trade.objects.filter(
        state_changed_at__lte=cutoff, state__in=[*UNFINISHED]
    ).select_related("opportunity__market")
    touched = []
    for trade in stuck:
        touched.append(trade.pk)
        if trade.state == Trade.State.PENDING:
            reason = "worker stopped before placing orders"
            if trade.advance(Trade.State.FAILED, detail=reason, failure_reason=reason):
                trade.orders.filter(state=Order.State.NEW).update(state=Order.State.CANCELED)
            continue
        profile = RiskProfile.objects.active(trade.mode) or RiskProfile(mode=trade.mode)
        for order in trade.orders.filter(state=Order.State.SUBMITTED).select_related("exchange"):
            venue = venue_for(order.exchange, trade.mode, profile)
            report = call_venues([venue.find_order(order_request(order))])[0]
            if isinstance(report, Exception):
                log.warning("order %s lookup failed: %r", order.client_order_id, report)
                continue
            record_or_flag(order, report, "" if report else "the venue has no such order")
        settle_trade(trade=trade, venue_for=venue_for, profile=profile)
    return touched
