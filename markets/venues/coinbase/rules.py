"""Coinbase's trading rules from its products answer: Advanced Trade's `GET /products`
(`{"products": [...]}`) or the legacy Exchange list (`quote_increment`, `min_market_funds`)."""

import orjson

from markets.money import ZERO
from markets.rules import RulesUnreadable, TradingRule, exact

PATH = "/api/v3/brokerage/market/products"


def trading_rules(body: bytes | str) -> dict[str, TradingRule]:
    """The rule of every product in the answer, by its product id (BTC-USD)."""
    try:
        answer = orjson.loads(body)
        products = answer["products"] if isinstance(answer, dict) else answer
        rules = [product_rule(product) for product in products]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RulesUnreadable(f"not a Coinbase products answer: {exc!r}") from exc
    return {rule.venue_symbol: rule for rule in rules}


def product_rule(product: dict) -> TradingRule:
    """One product's increments, minimums and status (halted, cancel-only or post-only: not
    traded, since the desk's orders take liquidity)."""
    symbol = product.get("product_id") or product["id"]
    tick = product.get("price_increment") or product["quote_increment"]
    min_notional = product.get("quote_min_size") or product.get("min_market_funds")
    return TradingRule(
        venue_symbol=symbol,
        tick=exact(tick, f"{symbol} price_increment"),
        lot=exact(product["base_increment"], f"{symbol} base_increment"),
        min_size=exact(product.get("base_min_size") or "0", f"{symbol} base_min_size"),
        min_notional=exact(min_notional, f"{symbol} quote_min_size") if min_notional else ZERO,
        tradable=not (reason := halted_because(product)),
        reason=reason,
    )


def halted_because(product: dict) -> str:
    """Why the desk may not take liquidity in `product` now; empty when it may."""
    status = str(product.get("status", "online")).lower()
    if status != "online":
        return f"Coinbase status {status}"
    for flag in ("trading_disabled", "cancel_only", "post_only"):
        if product.get(flag):
            return f"Coinbase {flag.replace('_', ' ')}"
    return ""
