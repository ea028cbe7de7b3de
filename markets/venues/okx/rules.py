"""OKX's trading rules from its `GET /api/v5/public/instruments?instType=SPOT` answer."""

from markets.money import ZERO
from markets.rules import RulesUnreadable, TradingRule, answer_data, exact

PATH = "/api/v5/public/instruments?instType=SPOT"


def trading_rules(body: bytes | str) -> dict[str, TradingRule]:
    """The rule of every instrument in the answer, by OKX's instrument id (BTC-USDT)."""
    instruments = answer_data(body, ok="0", venue="OKX")
    rules = (instrument_rule(entry) for entry in instruments)
    return {rule.venue_symbol: rule for rule in rules}


def instrument_rule(entry: dict) -> TradingRule:
    """One instrument's tick, lot and smallest size; OKX states no smallest order value."""
    inst = entry.get("instId", "?") if isinstance(entry, dict) else "?"
    try:
        state = entry["state"]
        return TradingRule(
            venue_symbol=entry["instId"],
            tick=exact(entry["tickSz"], f"{inst} tickSz"),
            lot=exact(entry["lotSz"], f"{inst} lotSz"),
            min_size=exact(entry["minSz"], f"{inst} minSz"),
            min_notional=ZERO,
            tradable=state == "live",
            reason="" if state == "live" else f"OKX state {state}",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise RulesUnreadable(f"{inst}: unreadable ({exc!r})") from exc
