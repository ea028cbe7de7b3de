"""A venue's trading rule for one market, read once from its reference answer and handed on.

Pure: plain values in and out; no Django, no I/O. Each venue's parser is its `rules.py`.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import orjson

from markets.money import ZERO


class RulesUnreadable(ValueError):
    """A venue's reference answer that is not the shape its parser reads."""


@dataclass(frozen=True, slots=True)
class TradingRule:
    """What a venue accepts for one market: price tick, size lot, minimum size and order value,
    and whether it trades now (`reason` says why not: the venue's own status)."""

    venue_symbol: str
    tick: Decimal
    lot: Decimal
    min_size: Decimal = ZERO
    min_notional: Decimal = ZERO
    tradable: bool = True
    reason: str = ""


def exact(value: object, name: str) -> Decimal:
    """`value` as the venue wrote it, exactly: a JSON string or integer, never a float."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RulesUnreadable(f"{name} is {value!r}, not a decimal string")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise RulesUnreadable(f"{name} is {value!r}, not a decimal") from exc


def step(decimals: object, name: str) -> Decimal:
    """The increment of `decimals` decimal places: 2 is 0.01."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise RulesUnreadable(f"{name} is {decimals!r}, not a count of decimal places")
    return Decimal(1).scaleb(-decimals)


def answer_data(body: bytes | str, *, ok: str, venue: str) -> list:
    """The `data` list of a `{"code", "data"}` answer (OKX, KuCoin) whose code is `ok`."""
    try:
        answer = orjson.loads(body)
        code = answer["code"]
        if code != ok:
            raise RulesUnreadable(f"{venue} error {code}: {answer.get('msg')}")
        return list(answer["data"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise RulesUnreadable(f"not a {venue} answer: {exc!r}") from exc
