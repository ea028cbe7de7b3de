"""Coinbase's trading rules, read from its recorded legacy products answer (2021-04-17) and an
Advanced Trade product of the documented shape."""

from decimal import Decimal

import pytest

from markets.rules import RulesUnreadable, TradingRule
from markets.venues.coinbase.rules import trading_rules
from tests.recordings import rest_body

ADVANCED = (
    b'{"products":[{"product_id":"BTC-USD","price_increment":"0.01","base_increment":"0.00000001",'
    b'"base_min_size":"0.00000001","quote_min_size":"1","status":"online",'
    b'"trading_disabled":false,"cancel_only":%s}]}'
)


@pytest.fixture(scope="module")
def rules() -> dict[str, TradingRule]:
    return trading_rules(rest_body("COINBASE.0"))


def test_btc_usd_rule_is_its_increments_and_minimums(rules):
    assert rules["BTC-USD"] == TradingRule(
        venue_symbol="BTC-USD",
        tick=Decimal("0.01"),
        lot=Decimal("0.00000001"),
        min_size=Decimal("0.0001"),
        min_notional=Decimal("5"),
        tradable=True,
    )


def test_a_limit_only_product_is_tradable(rules):
    assert rules["DAI-USD"].tradable is True


def test_skl_eur_lot_and_minimum_are_exact(rules):
    assert str(rules["SKL-EUR"].lot) == "0.1"
    assert str(rules["SKL-EUR"].min_notional) == "5.0"


def test_an_advanced_trade_product_is_read():
    rule = trading_rules(ADVANCED % b"false")["BTC-USD"]
    assert (rule.tick, rule.min_notional, rule.tradable) == (Decimal("0.01"), Decimal("1"), True)


def test_a_cancel_only_product_is_not_tradable():
    rule = trading_rules(ADVANCED % b"true")["BTC-USD"]
    assert (rule.tradable, rule.reason) == (False, "Coinbase cancel only")


def test_a_delisted_product_is_not_tradable():
    body = ADVANCED.replace(b'"online"', b'"delisted"') % b"false"
    assert trading_rules(body)["BTC-USD"].reason == "Coinbase status delisted"


def test_an_error_answer_is_unreadable():
    with pytest.raises(RulesUnreadable):
        trading_rules(b'{"error":"unauthorized"}')
