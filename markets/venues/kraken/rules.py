"""Kraken's trading rules from its `GET /0/public/AssetPairs` answer, by WebSocket v2 symbol."""

import orjson

from markets.money import ZERO
from markets.rules import RulesUnreadable, TradingRule, exact, step

PATH = "/0/public/AssetPairs"
# The statuses in which a limit order that takes liquidity is accepted.
TRADABLE = {"online", "limit_only"}
# Kraken's legacy asset codes in `wsname` against the v2 names the desk lists (XBT/USD: BTC/USD).
V2_NAMES = {"XBT": "BTC", "XDG": "DOGE"}


def trading_rules(body: bytes | str) -> dict[str, TradingRule]:
    """The rule of every pair in the answer, by its v2 symbol (BTC/USD)."""
    try:
        answer = orjson.loads(body)
        errors, pairs = answer.get("error"), answer["result"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RulesUnreadable(f"not a Kraken AssetPairs answer: {exc}") from exc
    if errors:
        raise RulesUnreadable(f"Kraken answered {', '.join(map(str, errors))}")
    rules = (pair_rule(pair) for pair in pairs.values() if "wsname" in pair)
    return {rule.venue_symbol: rule for rule in rules}


def v2_symbol(wsname: str) -> str:
    """`wsname` in WebSocket v2's asset names: XBT/USD is BTC/USD."""
    return "/".join(V2_NAMES.get(asset, asset) for asset in wsname.split("/"))


def pair_rule(pair: dict) -> TradingRule:
    """One pair's tick (`tick_size`, else `pair_decimals`), lot, `ordermin`, `costmin`, status."""
    symbol = v2_symbol(pair["wsname"])
    if "tick_size" in pair:
        tick = exact(pair["tick_size"], f"{symbol} tick_size")
    else:
        tick = step(pair.get("pair_decimals"), f"{symbol} pair_decimals")
    # Answers from before Kraken published a status (2021) are of pairs that trade.
    status = pair.get("status", "online")
    return TradingRule(
        venue_symbol=symbol,
        tick=tick,
        lot=step(pair.get("lot_decimals"), f"{symbol} lot_decimals"),
        min_size=exact(pair["ordermin"], f"{symbol} ordermin") if "ordermin" in pair else ZERO,
        min_notional=exact(pair["costmin"], f"{symbol} costmin") if "costmin" in pair else ZERO,
        tradable=status in TRADABLE,
        reason="" if status in TRADABLE else f"Kraken status {status}",
    )
