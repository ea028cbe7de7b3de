"""Settlement into the ledger: what a venue filled, booked as fills and fees; a trade's PnL."""

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from markets.money import money, plain
from markets.venues.orders import OrderReport
from portfolio.models import Account, LedgerEntry
from portfolio.services import InsufficientBalance, Posting, post_entries
from risk import alerts
from trading.models import Fill, Order, Trade

log = logging.getLogger(__name__)

# The alert kind of a venue's fills that reached the order after it was recorded otherwise.
UNBOOKED = "fills not booked"


def record_order_report(*, order: Order, report: OrderReport | None, error: str = "") -> bool:
    """Record what the venue did with `order`: its fills, and their ledger entries on the
    account, in one transaction. None means the venue never got the order. False if the order
    was already recorded (another run won); when that record holds other fills than the venue
    reports, the ledger is no longer the venue's, and the desk is alerted."""
    fills = report.fills if report else ()
    filled = sum((f.amount for f in fills), Decimal(0))
    notional = sum((f.price * f.amount for f in fills), Decimal(0))
    fee = sum((f.fee for f in fills), Decimal(0))
    if report and report.error:
        state, error = Order.State.REJECTED, report.error
    elif filled == 0:
        state = Order.State.CANCELED
    else:
        state = Order.State.FILLED if filled == order.amount else Order.State.PARTIALLY_FILLED
    trade = order.trade
    market = trade.opportunity.market
    with transaction.atomic():
        won = Order.objects.filter(pk=order.pk, state=Order.State.SUBMITTED).update(
            state=state,
            filled_amount=filled,
            average_price=money(notional / filled) if filled else None,
            fee=fee,
            venue_order_id=report.venue_order_id if report else "",
            error=error[:200],
            updated_at=timezone.now(),
        )
        if not won:
            _unbooked(order, filled)
            return False
        Fill.objects.bulk_create(
            Fill(order=order, price=f.price, amount=f.amount, fee=f.fee) for f in fills
        )
        if fills:
            sign = 1 if order.side == Order.Side.BUY else -1
            postings = [
                Posting(market.base, sign * filled, LedgerEntry.Kind.FILL),
                Posting(market.quote, -sign * money(notional), LedgerEntry.Kind.FILL),
            ]
            # Each fee in the asset the venue took it in (quote unless a fill says otherwise).
            fees: dict[str, Decimal] = {}
            for f in fills:
                asset = f.fee_asset or market.quote
                fees[asset] = fees.get(asset, Decimal(0)) + (
                    f.fee_charged if f.fee_asset else f.fee
                )
            postings += [Posting(a, -amount, LedgerEntry.Kind.FEE) for a, amount in fees.items()]
            account = Account.objects.get(exchange=order.exchange, mode=trade.mode)
            post_entries(account=account, postings=postings, trade=trade, order=order)
        trade.publish_change()
    order.refresh_from_db()
    return True


def _unbooked(order: Order, filled: Decimal) -> None:
    """Alert when a report of `filled` comes for `order` already recorded with other fills (a
    lookup that found nothing while the order was on its way, then its real answer): the
    difference is at the venue, not in the ledger, for a person to book."""
    recorded = Order.objects.filter(pk=order.pk).values_list("state", "filled_amount").get()
    if not filled or recorded[1] == filled:
        return
    message = (
        f"order {order.client_order_id}: the venue reports {plain(filled)} filled, but it is "
        f"recorded {recorded[0]} with {plain(recorded[1])}: the ledger misses the difference"
    )
    log.error(message)
    alerts.notify(UNBOOKED, order.client_order_id, message)


def record_or_flag(order: Order, report: OrderReport | None, error: str = "") -> None:
    """`record_order_report`, or a note on the order when the ledger cannot follow the venue."""
    try:
        record_order_report(order=order, report=report, error=error)
    except InsufficientBalance as exc:
        # The venue filled but the ledger cannot follow: leave the order for a person to see.
        log.error("order %s: %s", order.client_order_id, exc)
        Order.objects.filter(pk=order.pk).update(error=str(exc)[:200])


def imbalance(trade: Trade) -> Decimal:
    """Base bought minus base sold over all of the trade's orders."""
    net = Decimal(0)
    for side, filled in trade.orders.values_list("side", "filled_amount"):
        net += filled if side == Order.Side.BUY else -filled
    return net


def realised_pnl(trade: Trade) -> Decimal:
    """Quote received on sells minus quote paid on buys minus every fee, over all fills."""
    total = Decimal(0)
    for side, price, amount, fee in Fill.objects.filter(order__trade=trade).values_list(
        "order__side", "price", "amount", "fee"
    ):
        notional = price * amount
        total += (notional if side == Order.Side.SELL else -notional) - fee
    return money(total)


def close_trade(*, trade: Trade) -> bool:
    """Close a balanced trade with its realised PnL."""
    return trade.advance(Trade.State.CLOSED, realised_net_profit=realised_pnl(trade))
