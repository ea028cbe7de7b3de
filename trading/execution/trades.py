"""A trade's way through execution: recorded with its legs, both legs placed, then settled.

Each step is one transaction, or a sequence of them around the venue calls, never holding one
open across the network; pushes go out via on_commit.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from markets.money import money, plain, taker_fee
from markets.venues.live import NotTradable
from risk import alerts
from risk.models import RiskProfile
from trading.execution.hedging import IN_FLIGHT, balance_trade, held
from trading.execution.orders import VenueFor, client_order_id, grid_in, place_orders, rule_of
from trading.execution.settlement import close_trade, imbalance, realised_pnl
from trading.execution.sizing import BUY, SELL, leg_limits, on_tick, trade_size, under_minimum
from trading.models import Opportunity, Order, Trade

State = Trade.State


def open_trade(
    *, opportunity: Opportunity, mode: str, profile: RiskProfile, user=None
) -> Trade | None:
    """Record the Trade and its two legs in one transaction; None if the opportunity already
    has a trade (the task's idempotency key). A leg on a market its venue does not trade now
    (halted, cancel-only), a size of zero, or a leg under its venue's minimum order size or
    value, records a rejected trade with the reason and sends nothing.

    The legs' limit prices are the worst levels the detector walked to (`leg_limits`), on the
    venue's tick.
    """
    market, buy, sell = opportunity.market, opportunity.buy_exchange, opportunity.sell_exchange
    buy_rule, sell_rule = rule_of(buy, market), rule_of(sell, market)
    buy_grid, sell_grid = grid_in(buy_rule), grid_in(sell_rule)
    buy_limit, sell_limit = leg_limits(
        buy_vwap=opportunity.buy_vwap,
        sell_vwap=opportunity.sell_vwap,
        buy_limit=opportunity.buy_limit,
        sell_limit=opportunity.sell_limit,
    )
    size = trade_size(
        size=opportunity.size,
        max_notional=profile.max_notional,
        buy_limit=buy_limit,
        buy_fee=buy.taker_fee,
        quote_available=held(buy, mode, market.quote),
        base_available=held(sell, mode, market.base),
        buy_lot=buy_grid.lot,
        sell_lot=sell_grid.lot,
    )
    fees = taker_fee(size * opportunity.buy_vwap, buy.taker_fee_bps) + taker_fee(
        size * opportunity.sell_vwap, sell.taker_fee_bps
    )
    legs = [
        (buy, BUY, on_tick(buy_limit, buy_grid.tick, BUY), buy_grid),
        (sell, SELL, on_tick(sell_limit, sell_grid.tick, SELL), sell_grid),
    ]
    if size <= 0:
        reason = "no size fits the balances and the maximum notional"
    else:
        minimums = (
            under_minimum(
                venue=e.slug, grid=g, price=p, amount=size, base=market.base, quote=market.quote
            )
            for e, _, p, g in legs
        )
        reason = next(filter(None, minimums), "")
    halted = (
        f"{exchange.slug} does not trade {rule.venue_symbol} now: {rule.reason}"
        for exchange, rule in ((buy, buy_rule), (sell, sell_rule))
        if rule is not None and not rule.tradable
    )
    reason = next(halted, reason)
    now = timezone.now()
    try:
        with transaction.atomic():
            trade = Trade.objects.create(
                opportunity=opportunity,
                mode=mode,
                requested_size=size,
                expected_net_profit=money(size * (opportunity.sell_vwap - opportunity.buy_vwap))
                - fees,
                requested_by=user,
                created_at=now,
                state_changed_at=now,
            )
            if reason:
                trade.advance(State.REJECTED, detail=reason, failure_reason=reason)
                return trade
            for exchange, side, price, _ in legs:
                Order.objects.create(
                    trade=trade,
                    exchange=exchange,
                    side=side,
                    limit_price=price,
                    amount=size,
                    client_order_id=client_order_id(trade, side),
                )
    except IntegrityError:
        return None
    return trade


def submit_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """Claim a pending trade, place both legs at once, record them, then settle the trade.

    A leg on a venue that cannot trade in the trade's mode rejects the trade before either leg
    is placed: one leg alone would leave an imbalance that venue could not hedge.
    """
    legs = list(trade.orders.select_related("exchange", "trade__opportunity__market"))
    try:
        venues = [venue_for(order.exchange, trade.mode, profile) for order in legs]
    except NotTradable as exc:
        _reject(trade, str(exc))
        return trade
    if not trade.advance(State.SUBMITTED):
        return trade
    Order.objects.filter(trade=trade, state=Order.State.NEW).update(state=Order.State.SUBMITTED)
    for order in legs:
        order.state = Order.State.SUBMITTED
    place_orders(orders=legs, venues=venues)
    return settle_trade(trade=trade, venue_for=venue_for, profile=profile)


def _reject(trade: Trade, reason: str) -> None:
    """A pending trade refused before any order was sent: its legs are cancelled unsent."""
    with transaction.atomic():
        if trade.advance(State.REJECTED, detail=reason, failure_reason=reason[:200]):
            trade.orders.filter(state=Order.State.NEW).update(
                state=Order.State.CANCELED, error=reason[:200]
            )


def settle_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """After the legs: filled and closed, hedged or unwound, or failed when nothing filled.

    A trade whose legs differ alerts the desk once, when it becomes partially filled.
    """
    trade.refresh_from_db()
    if trade.state == State.SUBMITTED:
        legs = list(trade.orders.filter(purpose=Order.Purpose.LEG))
        if any(o.is_open for o in legs):
            return trade
        filled = [o.filled_amount for o in legs]
        if not any(filled):
            errors = "; ".join(o.error for o in legs if o.error)
            reason = f"neither leg filled{': ' + errors if errors else ''}"
            trade.advance(State.FAILED, detail=reason, failure_reason=reason[:200])
            return trade
        if imbalance(trade) == 0:
            trade.advance(State.FILLED, detail=f"both legs filled {filled[0]}")
        else:
            detail = f"legs filled {filled[0]} / {filled[1]}"
            if trade.advance(State.PARTIALLY_FILLED, detail=detail):
                legs_filled = ", ".join(f"{o.side} filled {plain(o.filled_amount)}" for o in legs)
                alerts.one_legged_trade(trade.pk, f"{legs_filled} of {plain(trade.requested_size)}")
    if trade.state == State.PARTIALLY_FILLED:
        balance_trade(trade=trade, venue_for=venue_for, profile=profile)
    if trade.state in {State.FILLED, State.HEDGED, State.UNWOUND}:
        close_trade(trade=trade)
    return trade


def keep_residual(trade: Trade, *, note: str, by: str) -> str:
    """Close a partially filled trade whose legs no order could balance, its residual kept as
    inventory (the ledger already holds it: nothing is booked), with its cash PnL; "" when
    closed, else why not. `note` says what a person did about it (say, sold it by hand at the
    venue, which the reconciliation and an adjustment then book)."""
    note = " ".join(note.split())
    if not note:
        return "Say what is done with the residual."
    if trade.state != State.PARTIALLY_FILLED:
        return f"Trade {trade.pk} is {trade.get_state_display().lower()}, not partially filled."
    if trade.orders.filter(state__in=IN_FLIGHT).exists():
        return f"Trade {trade.pk} has an order still in flight: wait for its answer."
    residual = imbalance(trade)
    if residual == 0:
        return f"Trade {trade.pk}'s legs match: there is no residual to keep."
    base = trade.opportunity.market.base
    detail = f"{plain(residual)} {base} kept as inventory by {by}: {note}"
    closed = trade.advance(
        State.CLOSED, detail=detail, realised_net_profit=realised_pnl(trade), residual=residual
    )
    return "" if closed else f"Trade {trade.pk} changed meanwhile: look again."
