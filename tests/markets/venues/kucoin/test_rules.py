"""KuCoin's trading rules, read from its recorded symbols answer (2021-04-25, trimmed)."""

from decimal import Decimal

import pytest

from markets.rules import RulesUnreadable, TradingRule
from markets.venues.kucoin.rules import trading_rules
from tests.recordings import rest_body


@pytest.fixture(scope="module")
def rules() -> dict[str, TradingRule]:
    return trading_rules(rest_body("KUCOIN.0"))


def test_btc_usdt_rule_is_its_increments_and_minimum_sizes(rules):
    assert rules["BTC-USDT"] == TradingRule(
        venue_symbol="BTC-USDT",
        tick=Decimal("0.1"),
        lot=Decimal("0.00000001"),
        min_size=Decimal("0.00001"),
        min_notional=Decimal("0.01"),
        tradable=True,
        reason="",
    )


def test_decimals_are_the_venue_text_exactly(rules):
    assert str(rules["ETH-BTC"].tick) == "0.000001"
    assert format(rules["ETH-USDT"].lot, "f") == "0.0000001"


def test_a_symbol_with_trading_disabled_is_not_tradable_and_says_why(rules):
    assert rules["ZEL-BTC"].tradable is False
    assert rules["ZEL-BTC"].reason == "KuCoin enableTrading false"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b'{"code":"400100","msg":"bad"}',
        b'{"code":"200000","data":[{"symbol":"X"}]}',
        b'{"code":"200000","data":["BTC-USDT"]}',
        b'{"code":"200000","data":[{"symbol":"X","enableTrading":true,"priceIncrement":0.1,'
        b'"baseIncrement":"1","baseMinSize":"1","quoteMinSize":"1"}]}',
    ],
)
def test_an_answer_of_another_shape_is_unreadable(body):
    with pytest.raises(RulesUnreadable):
        trading_rules(body)
