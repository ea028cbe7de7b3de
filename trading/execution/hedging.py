"""Hedge or unwind: close the imbalance a leg that did not fill completely left on a trade."""

from decimal import Decimal

from markets.models import Exchange
from markets.money import plain
from portfolio.models import Balance
from risk.models import RiskProfile
from trading.execution.orders import VenueFor, client_order_id, grid_of, place_orders
from trading.execution.settlement import imbalance
from trading.execution.sizing import on_tick, slipped, under_minimum, whole_lots
from trading.models import Order, Trade

# An order the venue may have taken, its answer not recorded yet.
IN_FLIGHT = [Order.State.NEW, Order.State.SUBMITTED]


def balance_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """Close a partly filled trade's imbalance: first retry the short leg against the current
    book within the profile's max hedge slippage (hedge), then trade back what is left of the
    long leg within the same slippage (unwind). A remainder leaves the trade partially filled
    for `recover_trades` to try again; it counts against exposure until then.

    Nothing is sent while an order of the trade is in flight: the imbalance counts only what
    is recorded filled, and an order whose answer was lost may have filled it already."""
    if trade.orders.filter(state__in=IN_FLIGHT).exists():
        return trade
    legs = {o.side: o for o in trade.orders.filter(purpose=Order.Purpose.LEG)}
    market = trade.opportunity.market
    slip = profile.max_hedge_slippage_bps
    unwound = False
    held_back = []  # why each order this pass could not be sent
    outcomes = []  # what each order this pass sent and did not fill whole came to
    for purpose in (Order.Purpose.HEDGE, Order.Purpose.UNWIND):
        net = imbalance(trade)
        if net == 0:
            break
        side = Order.Side.SELL if net > 0 else Order.Side.BUY
        if purpose == Order.Purpose.HEDGE:
            # The short leg again, on its own venue, from its original limit.
            leg = legs[side]
            exchange, price = leg.exchange, slipped(leg.limit_price, side, slip)
        else:
            # Trade back the long leg on its venue, from the price it filled at.
            leg = legs[Order.Side.BUY if side == Order.Side.SELL else Order.Side.SELL]
            exchange, price = leg.exchange, slipped(leg.average_price, side, slip)
        # On the venue's grids: its tick for the price; its lot for the amount, since a venue
        # refuses a quantity off its step (Binance: LOT_SIZE). When the legs' venues trade in
        # different steps, the finer one takes what the coarser leaves.
        grid = grid_of(exchange, market)
        wanted = abs(net)
        if side == Order.Side.SELL:
            # No more than the account holds: a buy's commission taken from the base it
            # delivered (Binance, KuCoin) leaves less than was bought, and the venue refuses a
            # sell of more every time.
            wanted = min(wanted, held(exchange, trade.mode, market.base))
        amount = whole_lots(wanted, grid.lot)
        price = on_tick(price, grid.tick, side)
        if not amount:
            held_back.append(f"{plain(wanted)} {market.base} is under {exchange.slug}'s lot")
            continue
        reason = under_minimum(
            venue=exchange.slug,
            grid=grid,
            price=price,
            amount=amount,
            base=market.base,
            quote=market.quote,
        )
        if reason:
            held_back.append(reason)
            continue
        order = _extra_order(
            trade, purpose=purpose, exchange=exchange, side=side, price=price, amount=amount
        )
        place_orders(orders=[order], venues=[venue_for(exchange, trade.mode, profile)])
        order.refresh_from_db()
        if order.is_open:
            return trade  # its fate is unknown until recover_trades finds it
        unwound = unwound or (purpose == Order.Purpose.UNWIND and order.filled_amount > 0)
        if order.filled_amount < order.amount:
            outcomes.append(_outcome(order))
    if imbalance(trade) == 0:
        to_state = Trade.State.UNWOUND if unwound else Trade.State.HEDGED
        # A note that an earlier pass could send nothing no longer holds.
        trade.advance(to_state, detail=f"imbalance closed by {to_state}", failure_reason="")
        return trade
    # What is left stays open, counted in exposure, for recover_trades to try again: say why on
    # the trade, once, for a person to act on.
    sent = "no order sent" if not outcomes else f"{plain(abs(imbalance(trade)))} {market.base} open"
    reason = f"left open, {sent}: {'; '.join(outcomes + held_back)}"[:200]
    if trade.failure_reason != reason:
        Trade.objects.filter(pk=trade.pk).update(failure_reason=reason)
        trade.failure_reason = reason
        trade.publish_change()
    return trade


def held(exchange: Exchange, mode: str, asset: str) -> Decimal:
    """What the ledger holds of `asset` on `exchange`'s account in `mode`."""
    row = Balance.objects.filter(account__exchange=exchange, account__mode=mode, asset=asset)
    return row.values_list("amount", flat=True).first() or Decimal(0)


def _outcome(order: Order) -> str:
    """What became of a hedge or unwind that did not fill whole, in a few words."""
    if order.state == Order.State.REJECTED:
        return f"{order.purpose} on {order.exchange.slug} refused: {order.error}"
    return (
        f"{order.purpose} on {order.exchange.slug} took {plain(order.filled_amount)} of "
        f"{plain(order.amount)} within {plain(order.limit_price)}"
    )


def _extra_order(
    trade: Trade, *, purpose: str, exchange: Exchange, side: str, price: Decimal, amount: Decimal
) -> Order:
    """A hedge or unwind order of `trade`, numbered within its purpose, ready to place."""
    number = trade.orders.filter(purpose=purpose).count() + 1
    return Order.objects.create(
        trade=trade,
        exchange=exchange,
        purpose=purpose,
        side=side,
        limit_price=price,
        amount=amount,
        client_order_id=client_order_id(trade, f"{purpose}-{number}"),
        state=Order.State.SUBMITTED,
    )
