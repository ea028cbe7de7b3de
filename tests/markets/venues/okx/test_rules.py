"""OKX's trading rules, read from its recorded SPOT instruments answer (2022-05-13, trimmed)."""

from decimal import Decimal

import pytest

from markets.rules import RulesUnreadable, TradingRule
from markets.venues.okx.rules import trading_rules
from tests.recordings import rest_body


@pytest.fixture(scope="module")
def rules() -> dict[str, TradingRule]:
    return trading_rules(rest_body("OKX.0"))


def test_btc_usdt_rule_is_its_tick_lot_and_minimum_size(rules):
    assert rules["BTC-USDT"] == TradingRule(
        venue_symbol="BTC-USDT",
        tick=Decimal("0.1"),
        lot=Decimal("0.00000001"),
        min_size=Decimal("0.00001"),
        min_notional=Decimal(0),
        tradable=True,
        reason="",
    )


def test_decimals_are_the_venue_text_exactly(rules):
    assert format(rules["SHIB-USDT"].tick, "f") == "0.00000001"
    assert rules["SHIB-USDT"].min_size == Decimal(50000)


def test_an_instrument_not_live_is_not_tradable_with_its_state_as_reason():
    body = (
        b'{"code":"0","data":[{"instId":"NEW-USDT","state":"preopen","tickSz":"0.01",'
        b'"lotSz":"1","minSz":"1"}]}'
    )

    rule = trading_rules(body)["NEW-USDT"]

    assert rule.tradable is False and rule.reason == "OKX state preopen"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b'{"code":"50011","msg":"Too Many Requests","data":[]}',
        b'{"code":"0","data":[{"instId":"X","state":"live"}]}',
        b'{"code":"0","data":[{"instId":"X","state":"live","tickSz":0.1,"lotSz":"1","minSz":"1"}]}',
    ],
)
def test_an_answer_of_another_shape_is_unreadable(body):
    with pytest.raises(RulesUnreadable):
        trading_rules(body)
