"""The desk's money words, said once: basis points, the stored money scale, plain digits, UTC days.

Every app uses these (the lowest app that needs them is this one: the venues' order modules).
"""

from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal

BPS = Decimal(10_000)
ZERO = Decimal(0)
# The money columns' scale (numeric(28, 12)): every stored or reported figure is quantized to it.
MONEY_PLACES = Decimal("1e-12")


def money(value: Decimal | int | float | str | None) -> Decimal:
    """`value` at the stored precision (12 decimal places, half-even); None is zero.

    A float is never a stored amount; one handed in is taken by its shortest repr.
    """
    if value is None:
        value = ZERO
    elif isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


def plain(value: Decimal) -> str:
    """A Decimal as plain digits, without exponent or trailing zeros: 2E+2 -> 200, 1.50 -> 1.5."""
    return f"{value.normalize():f}"


def taker_fee(notional: Decimal, fee_bps: Decimal) -> Decimal:
    """The taker fee in quote on a leg's `notional` at `fee_bps`, at money scale."""
    return money(notional * fee_bps / BPS)


def net_bps(ask: Decimal, bid: Decimal, buy_fee: Decimal, sell_fee: Decimal) -> Decimal:
    """Net margin in bps of buying one unit at `ask` and selling it at `bid`, both taker fees
    (fractions of notional) paid, over the buy notional."""
    return (bid * (1 - sell_fee) - ask * (1 + buy_fee)) / ask * BPS


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`: the desk's days are UTC days."""
    return datetime.combine(day, time.min, tzinfo=UTC)
