"""Binance's trading rules, read from its recorded exchangeInfo answer (2021-10-12)."""

from decimal import Decimal

import pytest

from markets.rules import RulesUnreadable, TradingRule
from markets.venues.binance.rules import trading_rules
from tests.recordings import rest_body


@pytest.fixture(scope="module")
def rules() -> dict[str, TradingRule]:
    return trading_rules(rest_body("BINANCE.0"))


def test_btcusdt_rule_is_its_price_lot_and_min_notional_filters(rules):
    assert rules["BTCUSDT"] == TradingRule(
        venue_symbol="BTCUSDT",
        tick=Decimal("0.01"),
        lot=Decimal("0.00001"),
        min_size=Decimal("0.00001"),
        min_notional=Decimal("10"),
        tradable=True,
        reason="",
    )


def test_decimals_are_the_venue_text_exactly(rules):
    assert str(rules["ETHBTC"].tick) == "0.00000100"
    assert str(rules["ETHBTC"].min_notional) == "0.00010000"


def test_a_symbol_in_break_is_not_tradable_with_its_status_as_reason(rules):
    assert rules["BCCBTC"].tradable is False
    assert rules["BCCBTC"].reason == "Binance status BREAK"


def test_the_newer_notional_filter_gives_the_minimum():
    body = (
        b'{"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":['
        b'{"filterType":"PRICE_FILTER","tickSize":"0.01"},'
        b'{"filterType":"LOT_SIZE","stepSize":"0.00001","minQty":"0.00001"},'
        b'{"filterType":"NOTIONAL","minNotional":"5.00000000"}]}]}'
    )
    assert trading_rules(body)["BTCUSDT"].min_notional == Decimal("5")


@pytest.mark.parametrize("body", [b"<html>", b'{"code":-1121}', b'{"symbols":[{"symbol":"X"}]}'])
def test_an_answer_of_another_shape_is_unreadable(body):
    with pytest.raises(RulesUnreadable):
        trading_rules(body)
