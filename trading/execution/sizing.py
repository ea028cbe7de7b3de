"""Sizing and tick maths for execution: how much both legs can take, and at which limit prices.

Pure: plain Decimal values in and out; no Django, no I/O.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from markets.money import BPS, ZERO, money, plain
from trading.detector import common_lot

BUY, SELL = "buy", "sell"  # the order sides (Order.Side)
# The lot of a venue that does not list the market: the finest step the desk sizes in.
UNLISTED_LOT = Decimal("1e-8")
# Exact for every figure stored or derived here: prices, sizes and lots carry at most 28 digits.
EXACT_PREC = 60


@dataclass(frozen=True, slots=True)
class Grid:
    """What a venue accepts for one market: its price tick, its lot, its minimum order value
    and size.

    No tick or lot (None) when the venue does not list the market.
    """

    tick: Decimal | None = None
    lot: Decimal | None = None
    min_notional: Decimal = ZERO
    min_size: Decimal = ZERO


def leg_limits(
    *, buy_vwap: Decimal, sell_vwap: Decimal, buy_limit: Decimal | None, sell_limit: Decimal | None
) -> tuple[Decimal, Decimal]:
    """The (buy, sell) limit prices of the legs: the worst ask and bid the detector walked to.

    A leg at its VWAP could never take the levels priced beyond it, so a cross over two levels
    would always fill short and pay for a hedge; at the level walked to, an unchanged book fills
    the whole size at the VWAP, and a book that moved against us fills no unit that pays less
    than the walk's last slice, which met the threshold. Rows from before the walked-to prices
    were kept give their VWAPs.
    """
    return (
        buy_vwap if buy_limit is None else buy_limit,
        sell_vwap if sell_limit is None else sell_limit,
    )


def trade_size(
    *,
    size: Decimal,
    max_notional: Decimal,
    buy_limit: Decimal,
    buy_fee: Decimal,
    quote_available: Decimal,
    base_available: Decimal,
    buy_lot: Decimal | None,
    sell_lot: Decimal | None,
) -> Decimal:
    """The size both legs can take, in lots both venues accept: within the opportunity's
    `size`, the `max_notional`, the quote available on the buy venue (with its taker fee, a
    fraction) and the base available on the sell venue.

    Notional is counted at the buy leg's limit, the most a unit can cost: the venue holds that
    much quote for the order. Each bound is counted in whole lots exactly, so rounding a
    quotient can never lift the size over a bound.
    """
    lot = common_lot(
        UNLISTED_LOT if buy_lot is None else buy_lot, UNLISTED_LOT if sell_lot is None else sell_lot
    )
    with localcontext(prec=EXACT_PREC):
        lots = min(
            size // lot,
            max_notional // (buy_limit * lot),
            quote_available // (buy_limit * (1 + buy_fee) * lot),
            base_available // lot,
        )
        return max(lots * lot, ZERO)


def on_tick(price: Decimal, tick: Decimal | None, side: str) -> Decimal:
    """A limit `price` on the venue's tick grid, rounded toward the better price for `side`.

    A venue refuses a limit price off its grid (Binance: "Filter failure: PRICE_FILTER"), and a
    VWAP or a slipped price rarely lies on it. A buy's limit is rounded down and a sell's up, so
    a leg still cannot fill at a worse average than the detector priced, nor a hedge beyond its
    slippage. Without a listing the price stays as it is.
    """
    if tick is None:
        return price
    rounding = ROUND_FLOOR if side == BUY else ROUND_CEILING
    with localcontext(prec=EXACT_PREC):
        return (price / tick).to_integral_value(rounding=rounding) * tick


def whole_lots(amount: Decimal, lot: Decimal | None) -> Decimal:
    """`amount` cut down to the venue's lot (a venue refuses a quantity off its step)."""
    if lot is None:
        return amount
    with localcontext(prec=EXACT_PREC):
        return amount // lot * lot


def slipped(price: Decimal, side: str, bps: Decimal) -> Decimal:
    """`price` moved `bps` against us: what a hedge or unwind may pay (buy) or accept (sell)."""
    factor = (1 + bps / BPS) if side == BUY else (1 - bps / BPS)
    return money(price * factor)


def under_minimum(
    *, venue: str, grid: Grid, price: Decimal, amount: Decimal, base: str, quote: str
) -> str:
    """Why `venue` would refuse `amount` at `price` for its minimum order size or value, or ''.

    A venue refuses such an order outright (Binance: "Filter failure: NOTIONAL"), so sending
    it would only fail one leg of a pair, or fail again at every recovery pass.
    """
    if amount < grid.min_size:
        return (
            f"{plain(amount)} {base} is under {venue}'s minimum order size of "
            f"{plain(grid.min_size)} {base}"
        )
    value = price * amount
    if value >= grid.min_notional:
        return ""
    return (
        f"{plain(amount)} {base} at {plain(price)} is worth {plain(value)} "
        f"{quote}, under {venue}'s minimum order value of {plain(grid.min_notional)}"
    )
