"""The desk's money words, said once: basis points, the stored money scale, UTC days, and how a
number is written for people (plain digits, money at its currency's places, prices on the tick).

Every app uses these (the lowest app that needs them is this one: the venues' order modules).
"""

from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

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


# Decimal places an amount of a currency is written with; fiat and the dollar stablecoins take
# cents, any other asset (BTC, ETH, ...) is written to eight places, the satoshi.
FIAT_PLACES = 2
ASSET_PLACES = 8
FIAT = frozenset({"USD", "EUR", "GBP", "JPY", "USDT", "USDC", "DAI", "BUSD", "FDUSD"})


def plain(value: Decimal) -> str:
    """A Decimal as plain digits, without exponent or trailing zeros: 2E+2 -> 200, 1.50 -> 1.5."""
    text = f"{value.normalize():f}"
    return "0" if text == "-0" else text


def fixed(value: Decimal, places: int) -> str:
    """`value` written with exactly `places` decimals (half-even), never exponent notation."""
    with localcontext() as context:  # room for every digit of a large value at `places`
        context.prec = max(context.prec, value.adjusted() + places + 2)
        shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{shown:f}"
    return text[1:] if shown.is_zero() and text.startswith("-") else text


def currency_places(currency: str) -> int:
    """The decimals an amount of `currency` is written with."""
    return FIAT_PLACES if currency.upper() in FIAT else ASSET_PLACES


def amount_text(value: Decimal, currency: str) -> str:
    """An amount of `currency` as people write it: 0E-12 USD -> 0.00, 1.5 BTC -> 1.50000000."""
    return fixed(value, currency_places(currency))


def step_places(step: Decimal) -> int:
    """The decimals of a tick or lot size: 0.01 -> 2, 1 -> 0, 5E+1 -> 0."""
    return max(-step.normalize().as_tuple().exponent, 0)


def on_grid(value: Decimal | None, step: Decimal) -> Decimal | None:
    """`value` carrying the decimals of `step` (a tick or lot size) when it lies on that grid.

    Binance sends eight decimals whatever the tick ("60078.01000000" for a 0.01 tick); the desk
    reads "60078.01". A value off the grid keeps the digits it came with: it is never rounded.
    """
    if value is None:
        return None
    shown = value.quantize(Decimal(1).scaleb(-step_places(step)))
    return shown if shown == value else value


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
