"""KuCoin's trading rules from its `GET /api/v1/symbols` answer (each symbol's increments)."""

from markets.rules import RulesUnreadable, TradingRule, answer_data, exact

PATH = "/api/v1/symbols"


def trading_rules(body: bytes | str) -> dict[str, TradingRule]:
    """The rule of every symbol in the answer, by KuCoin's symbol (BTC-USDT)."""
    symbols = answer_data(body, ok="200000", venue="KuCoin")
    rules = (symbol_rule(entry) for entry in symbols)
    return {rule.venue_symbol: rule for rule in rules}


def symbol_rule(entry: dict) -> TradingRule:
    """One symbol's price and size increments, smallest size and smallest order value."""
    symbol = entry.get("symbol", "?") if isinstance(entry, dict) else "?"
    try:
        tradable = entry["enableTrading"]
        rule = TradingRule(
            venue_symbol=entry["symbol"],
            tick=exact(entry["priceIncrement"], f"{symbol} priceIncrement"),
            lot=exact(entry["baseIncrement"], f"{symbol} baseIncrement"),
            min_size=exact(entry["baseMinSize"], f"{symbol} baseMinSize"),
            min_notional=exact(entry["quoteMinSize"], f"{symbol} quoteMinSize"),
            tradable=tradable is True,
            reason="" if tradable is True else "KuCoin enableTrading false",
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise RulesUnreadable(f"{symbol}: unreadable ({exc!r})") from exc
    return rule
