"""Binance's trading rules from its `GET /api/v3/exchangeInfo` answer (each symbol's filters)."""

import orjson

from markets.money import ZERO
from markets.rules import RulesUnreadable, TradingRule, exact

PATH = "/api/v3/exchangeInfo"


def trading_rules(body: bytes | str) -> dict[str, TradingRule]:
    """The rule of every symbol in the answer, by Binance's symbol (BTCUSDT)."""
    try:
        symbols = orjson.loads(body)["symbols"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise RulesUnreadable(f"not a Binance exchangeInfo answer: {exc}") from exc
    return {entry["symbol"]: symbol_rule(entry) for entry in symbols}


def symbol_rule(entry: dict) -> TradingRule:
    """One symbol's PRICE_FILTER, LOT_SIZE and NOTIONAL (MIN_NOTIONAL before 2023) filters."""
    symbol = entry["symbol"]
    filters = {f["filterType"]: f for f in entry.get("filters", [])}
    try:
        price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
    except KeyError as exc:
        raise RulesUnreadable(f"{symbol} has no {exc.args[0]} filter") from exc
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL")
    status = entry.get("status", "")
    return TradingRule(
        venue_symbol=symbol,
        tick=exact(price["tickSize"], f"{symbol} tickSize"),
        lot=exact(lot["stepSize"], f"{symbol} stepSize"),
        min_size=exact(lot["minQty"], f"{symbol} minQty"),
        min_notional=exact(notional["minNotional"], f"{symbol} minNotional") if notional else ZERO,
        tradable=status == "TRADING",
        reason="" if status == "TRADING" else f"Binance status {status}",
    )
