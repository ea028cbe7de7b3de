"""How pages write numbers, by markets.money's rules: plain digits, never exponent notation.

`{% load numbers %}` then `{{ size|plain }}`, `{{ price|digits }}` (a value already on its tick or
lot, as `markets.money.on_grid` leaves it) and `{{ balance|amount:"BTC" }}`.
"""

from decimal import Decimal, InvalidOperation

from django import template

from markets.money import amount_text
from markets.money import plain as plain_text

register = template.Library()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def plain(value) -> str:
    """Every digit the value has and no trailing zeros: 1E+2 -> 100, 1.50 -> 1.5."""
    number = _decimal(value)
    return "" if number is None else plain_text(number)


@register.filter
def digits(value) -> str:
    """The value with the decimals it carries (60078.10 stays so), in plain digits."""
    number = _decimal(value)
    return "" if number is None else f"{number:f}"


@register.filter
def amount(value, currency: str) -> str:
    """An amount of `currency` at that currency's places: 0E-12 USD -> 0.00."""
    number = _decimal(value)
    return "" if number is None else amount_text(number, str(currency))
