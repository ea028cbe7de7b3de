"""Execution writes: record a trade and its legs, record what the venues did, balance, close.

Each function is one transaction (or a sequence of them around venue calls, never holding one
open across the network); pushes and task enqueues go out via on_commit.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from markets import notices
from markets.models import Exchange, Listing, Market
from markets.money import BPS, money, plain, taker_fee
from markets.venues.orders import OrderReport, OrderRequest, OrderUnknown, Venue
from portfolio.models import Account, Balance, LedgerEntry, Mode
from portfolio.services import InsufficientBalance, Posting, post_entries
from risk.models import RiskProfile
from trading.detector import common_lot
from trading.models import Fill, Opportunity, Order, Trade

log = logging.getLogger(__name__)

# How long an enqueued execution stays worth doing.
EXECUTION_DEADLINE_S = 10.0
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
VenueFor = Callable[[Exchange, str, RiskProfile], Venue]
State = Trade.State


def request_execution(opportunity: Opportunity, *, user=None, mode: str | None = None) -> None:
    """Enqueue `execute_opportunity` once the caller's transaction commits.

    The engine's automatic path and a Trader's manual execute both call this.
    """
    from trading.tasks import execute_opportunity

    kwargs = {
        "deadline_ts": time.time() + EXECUTION_DEADLINE_S,
        "mode": mode or RiskProfile.objects.execution_mode(),
        "user_id": getattr(user, "pk", None),
    }
    transaction.on_commit(lambda: execute_opportunity.delay(opportunity.pk, **kwargs))


def default_venue(exchange: Exchange, mode: str, profile: RiskProfile) -> Venue:
    """The paper venue, or the live ccxt venue for `exchange`."""
    if mode == Mode.LIVE:
        from markets.venues.binance.orders import LiveVenue

        return LiveVenue.for_exchange(exchange)
    from trading.execution.paper import PaperVenue

    return PaperVenue(max_book_age_s=profile.max_book_age_ms / 1000)


def _available(exchange: Exchange, mode: str, asset: str) -> Decimal:
    row = Balance.objects.filter(account__exchange=exchange, account__mode=mode, asset=asset)
    return row.values_list("amount", flat=True).first() or Decimal(0)


def leg_limits(opportunity: Opportunity) -> tuple[Decimal, Decimal]:
    """The (buy, sell) limit prices of its legs: the worst ask and bid the detector walked to.

    A leg at its VWAP could never take the levels priced beyond it, so a cross over two levels
    would always fill short and pay for a hedge; at the level walked to, an unchanged book fills
    the whole size at the VWAP, and a book that moved against us fills no unit that pays less
    than the walk's last slice, which met the threshold. Rows from before the walked-to prices
    were kept give their VWAPs.
    """
    return (
        opportunity.buy_vwap if opportunity.buy_limit is None else opportunity.buy_limit,
        opportunity.sell_vwap if opportunity.sell_limit is None else opportunity.sell_limit,
    )


def trade_size(*, opportunity: Opportunity, mode: str, profile: RiskProfile) -> Decimal:
    """The size both legs can take: within the opportunity, the profile's max notional, the
    quote on the buy venue (with its taker fee) and the base on the sell venue, in whole lots.

    Notional is counted at the buy leg's limit, the most a unit can cost: the venue holds that
    much quote for the order."""
    market, buy, sell = opportunity.market, opportunity.buy_exchange, opportunity.sell_exchange
    lots = dict(Listing.objects.filter(market=market).values_list("exchange_id", "lot_size"))
    lot = common_lot(lots.get(buy.pk, Decimal("1e-8")), lots.get(sell.pk, Decimal("1e-8")))
    price = leg_limits(opportunity)[0]
    size = min(
        opportunity.size,
        profile.max_notional / price,
        _available(buy, mode, market.quote) / (price * (1 + buy.taker_fee)),
        _available(sell, mode, market.base),
    )
    return max(size // lot * lot, Decimal(0))


def on_tick(price: Decimal, tick: Decimal | None, side: str) -> Decimal:
    """A limit `price` on the venue's tick grid, rounded toward the better price for `side`.

    A venue refuses a limit price off its grid (Binance: "Filter failure: PRICE_FILTER"), and a
    VWAP or a slipped price rarely lies on it. A buy's limit is rounded down and a sell's up, so
    a leg still cannot fill at a worse average than the detector priced, nor a hedge beyond its
    slippage. Without a listing the price stays as it is.
    """
    if tick is None:
        return price
    rounding = ROUND_FLOOR if side == Order.Side.BUY else ROUND_CEILING
    with localcontext(prec=60):  # exact: prices and ticks carry at most 28 digits
        return (price / tick).to_integral_value(rounding=rounding) * tick


def open_trade(
    *, opportunity: Opportunity, mode: str, profile: RiskProfile, user=None
) -> Trade | None:
    """Record the Trade and its two legs in one transaction; None if the opportunity already
    has a trade (the task's idempotency key). A size of zero, or a leg worth less than its
    venue's minimum order value, records a rejected trade and sends nothing.

    The legs' limit prices are the worst levels the detector walked to (`leg_limits`), on the
    venue's tick.
    """
    size = trade_size(opportunity=opportunity, mode=mode, profile=profile)
    market, buy, sell = opportunity.market, opportunity.buy_exchange, opportunity.sell_exchange
    fees = taker_fee(size * opportunity.buy_vwap, buy.taker_fee_bps) + taker_fee(
        size * opportunity.sell_vwap, sell.taker_fee_bps
    )
    legs = []
    buy_limit, sell_limit = leg_limits(opportunity)
    for exchange, side, price in ((buy, "buy", buy_limit), (sell, "sell", sell_limit)):
        grid = _grid(exchange, market)
        legs.append((exchange, side, on_tick(price, grid.tick, side), grid))
    if size <= 0:
        reason = "no size fits the balances and the maximum notional"
    else:
        reason = next(
            filter(None, (_under_minimum(e, g, p, size, market) for e, _, p, g in legs)), ""
        )
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


def client_order_id(trade: Trade, leg: str) -> str:
    """The id the venue knows one of `trade`'s orders by: `arb-<trade>-<created>-<leg>`.

    Derived from the trade alone, so a retried task finds the order it placed. The creation
    time (milliseconds, in hex) keeps it unique when trade numbers start again on a new or
    restored database, while the venue (or the paper venue's cache) still holds the orders of
    the trades numbered so before: their fills must never be taken for a new trade's. Within
    Binance's 36 characters up to trade 9,999,999,999.
    """
    return f"arb-{trade.pk}-{int(trade.created_at.timestamp() * 1000):x}-{leg}"


def _request(order: Order) -> OrderRequest:
    market = order.trade.opportunity.market
    listing = Listing.objects.filter(exchange=order.exchange, market=market).first()
    return OrderRequest(
        client_order_id=order.client_order_id,
        venue=order.exchange.slug,
        market=market.symbol,
        venue_symbol=listing.venue_symbol if listing else market.symbol,
        side=order.side,
        amount=order.amount,
        limit_price=order.limit_price,
        taker_fee_bps=order.exchange.taker_fee_bps,
    )


def _call_venues(calls: list) -> list[OrderReport | BaseException | None]:
    async def run():
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(run())


def record_order_report(*, order: Order, report: OrderReport | None, error: str = "") -> bool:
    """Record what the venue did with `order`: its fills, and their ledger entries on the
    account, in one transaction. None means the venue never got the order. False if the order
    was already recorded (another run won)."""
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
        notices.publish(notices.TRADES)
    order.refresh_from_db()
    return True


def place_orders(*, orders: list[Order], venue_for: VenueFor, profile: RiskProfile) -> None:
    """Send `orders` (already SUBMITTED) to their venues at once and record every answer."""
    venues = [venue_for(o.exchange, o.trade.mode, profile) for o in orders]
    requests = [_request(o) for o in orders]
    results = _call_venues([v.place_ioc(r) for v, r in zip(venues, requests, strict=True)])
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # the worker is going down: leave the orders for recover_trades
    for order, result in zip(orders, results, strict=True):
        if isinstance(result, OrderUnknown):
            log.warning("order %s left for recovery: %s", order.client_order_id, result)
            continue
        if isinstance(result, Exception):
            # Not an answer: the order may have reached the venue (an answer the client could
            # not read, say), so it is not recorded as refused, which would hedge or unwind the
            # other leg against a fill the venue did make. It stays submitted; recover_trades
            # looks it up by its client order id.
            log.error("order %s left for recovery: %r", order.client_order_id, result)
            note = f"left for recovery: {type(result).__name__}: {result}"[:200]
            Order.objects.filter(pk=order.pk).update(error=note)
            continue
        _record_or_flag(order, result)


def _record_or_flag(order: Order, report: OrderReport | None, error: str = "") -> None:
    try:
        record_order_report(order=order, report=report, error=error)
    except InsufficientBalance as exc:
        # The venue filled but the ledger cannot follow: leave the order for a person to see.
        log.error("order %s: %s", order.client_order_id, exc)
        Order.objects.filter(pk=order.pk).update(error=str(exc)[:200])


def submit_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """Claim a pending trade, place both legs at once, record them, then settle the trade."""
    if not trade.advance(State.SUBMITTED):
        return trade
    legs = list(trade.orders.select_related("exchange", "trade__opportunity__market"))
    Order.objects.filter(trade=trade, state=Order.State.NEW).update(state=Order.State.SUBMITTED)
    for order in legs:
        order.state = Order.State.SUBMITTED
    place_orders(orders=legs, venue_for=venue_for, profile=profile)
    return settle_trade(trade=trade, venue_for=venue_for, profile=profile)


def imbalance(trade: Trade) -> Decimal:
    """Base bought minus base sold over all of the trade's orders."""
    net = Decimal(0)
    for side, filled in trade.orders.values_list("side", "filled_amount"):
        net += filled if side == Order.Side.BUY else -filled
    return net


def settle_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """After the legs: filled and closed, hedged or unwound, or failed when nothing filled."""
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
            trade.advance(State.PARTIALLY_FILLED, detail=f"legs filled {filled[0]} / {filled[1]}")
    if trade.state == State.PARTIALLY_FILLED:
        balance_trade(trade=trade, venue_for=venue_for, profile=profile)
    if trade.state in {State.FILLED, State.HEDGED, State.UNWOUND}:
        close_trade(trade=trade)
    return trade


def _slipped(price: Decimal, side: str, bps: Decimal) -> Decimal:
    factor = (1 + bps / BPS) if side == Order.Side.BUY else (1 - bps / BPS)
    return money(price * factor)


class Grid(NamedTuple):
    """What a venue accepts for one market: its price tick, its lot, its minimum order value."""

    tick: Decimal | None = None
    lot: Decimal | None = None
    min_notional: Decimal = Decimal(0)


def _grid(exchange: Exchange, market: Market) -> Grid:
    """The venue's grid for `market`; no tick, lot or minimum when it does not list it."""
    listing = Listing.objects.filter(exchange=exchange, market=market)
    row = listing.values_list("tick_size", "lot_size", "min_notional").first()
    return Grid(*row) if row else Grid()


def _under_minimum(
    exchange: Exchange, grid: Grid, price: Decimal, amount: Decimal, market: Market
) -> str:
    """Why `exchange` would refuse `amount` at `price` for its minimum order value, or ''.

    A venue refuses such an order outright (Binance: "Filter failure: NOTIONAL"), so sending
    it would only fail one leg of a pair, or fail again at every recovery pass.
    """
    value = price * amount
    if value >= grid.min_notional:
        return ""
    return (
        f"{plain(amount)} {market.base} at {plain(price)} is worth {plain(value)} "
        f"{market.quote}, under {exchange.slug}'s minimum order value of "
        f"{plain(grid.min_notional)}"
    )


def _extra_order(
    trade: Trade, *, purpose: str, exchange: Exchange, side: str, price: Decimal, amount: Decimal
) -> Order:
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


def balance_trade(*, trade: Trade, venue_for: VenueFor, profile: RiskProfile) -> Trade:
    """Close a partly filled trade's imbalance: first retry the short leg against the current
    book within the profile's max hedge slippage (hedge), then trade back what is left of the
    long leg within the same slippage (unwind). A remainder leaves the trade partially filled
    for `recover_trades` to try again; it counts against exposure until then."""
    legs = {o.side: o for o in trade.orders.filter(purpose=Order.Purpose.LEG)}
    market = trade.opportunity.market
    slip = profile.max_hedge_slippage_bps
    unwound = placed = False
    held_back = []  # why each order this pass could not be sent
    for purpose in (Order.Purpose.HEDGE, Order.Purpose.UNWIND):
        net = imbalance(trade)
        if net == 0:
            break
        side = Order.Side.SELL if net > 0 else Order.Side.BUY
        if purpose == Order.Purpose.HEDGE:
            # The short leg again, on its own venue, from its original limit.
            leg = legs[side]
            exchange, price = leg.exchange, _slipped(leg.limit_price, side, slip)
        else:
            # Trade back the long leg on its venue, from the price it filled at.
            leg = legs[Order.Side.BUY if side == Order.Side.SELL else Order.Side.SELL]
            exchange, price = leg.exchange, _slipped(leg.average_price, side, slip)
        # On the venue's grids: its tick for the price; its lot for the amount, since a venue
        # refuses a quantity off its step (Binance: LOT_SIZE). When the legs' venues trade in
        # different steps, the finer one takes what the coarser leaves.
        grid = _grid(exchange, market)
        amount = abs(net) if grid.lot is None else abs(net) // grid.lot * grid.lot
        price = on_tick(price, grid.tick, side)
        if not amount:
            held_back.append(f"{plain(abs(net))} {market.base} is under {exchange.slug}'s lot")
            continue
        if reason := _under_minimum(exchange, grid, price, amount, market):
            held_back.append(reason)
            continue
        order = _extra_order(
            trade, purpose=purpose, exchange=exchange, side=side, price=price, amount=amount
        )
        place_orders(orders=[order], venue_for=venue_for, profile=profile)
        placed = True
        order.refresh_from_db()
        if order.is_open:
            return trade  # its fate is unknown until recover_trades finds it
        unwound = unwound or (purpose == Order.Purpose.UNWIND and order.filled_amount > 0)
    if imbalance(trade) == 0:
        to_state = State.UNWOUND if unwound else State.HEDGED
        # A note that an earlier pass could send nothing no longer holds.
        trade.advance(to_state, detail=f"imbalance closed by {to_state}", failure_reason="")
    elif held_back and not placed:
        # Neither venue takes what is left: say so on the trade, once, for a person to act on.
        reason = f"left open, no order sent: {'; '.join(held_back)}"[:200]
        if trade.failure_reason != reason:
            Trade.objects.filter(pk=trade.pk).update(failure_reason=reason)
            trade.failure_reason = reason
            notices.publish(notices.TRADES)
    return trade


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
    return trade.advance(State.CLOSED, realised_net_profit=realised_pnl(trade))


def recover_trades(
    *, older_than_s: float = STUCK_AFTER_S, venue_for: VenueFor = default_venue
) -> list[int]:
    """Finish or fail trades whose worker stopped: pending ones never placed an order (failed);
    submitted orders are looked up at the venue by client order id and recorded; partly filled
    trades are balanced again; balanced ones are closed. Returns the ids it touched."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stuck = Trade.objects.filter(
        state_changed_at__lte=cutoff,
        state__in=[*UNFINISHED],
    ).select_related("opportunity__market")
    touched = []
    for trade in stuck:
        touched.append(trade.pk)
        if trade.state == State.PENDING:
            reason = "worker stopped before placing orders"
            if trade.advance(State.FAILED, detail=reason, failure_reason=reason):
                trade.orders.filter(state=Order.State.NEW).update(state=Order.State.CANCELED)
            continue
        profile = RiskProfile.objects.active(trade.mode) or RiskProfile(mode=trade.mode)
        for order in trade.orders.filter(state=Order.State.SUBMITTED).select_related("exchange"):
            venue = venue_for(order.exchange, trade.mode, profile)
            report = _call_venues([venue.find_order(_request(order))])[0]
            if isinstance(report, Exception):
                log.warning("order %s lookup failed: %r", order.client_order_id, report)
                continue
            _record_or_flag(order, report, "" if report else "the venue has no such order")
        settle_trade(trade=trade, venue_for=venue_for, profile=profile)
    return touched
