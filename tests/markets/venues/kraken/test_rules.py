"""Kraken's trading rules, read from its recorded AssetPairs answer (2021-04-17)."""

from decimal import Decimal

import pytest

from markets.rules import RulesUnreadable, TradingRule
from markets.venues.kraken.rules import pair_rule, trading_rules
from tests.recordings import rest_body


@pytest.fixture(scope="module")
def rules() -> dict[str, TradingRule]:
    return trading_rules(rest_body("KRAKEN.0"))


def test_pairs_are_keyed_by_their_websocket_v2_symbol(rules):
    assert set(rules) == {"BTC/USD", "BTC/EUR", "ETH/USD", "DOGE/BTC"}


def test_btc_usd_rule_is_its_pair_and_lot_decimals_and_ordermin(rules):
    assert rules["BTC/USD"] == TradingRule(
        venue_symbol="BTC/USD",
        tick=Decimal("0.1"),
        lot=Decimal("0.00000001"),
        min_size=Decimal("0.0002"),
        min_notional=Decimal("0"),
        tradable=True,
    )


def test_eth_usd_ordermin_is_exact(rules):
    assert rules["ETH/USD"].tick == Decimal("0.01")
    assert str(rules["ETH/USD"].min_size) == "0.005"


def test_tick_size_and_costmin_when_published_win_over_pair_decimals():
    rule = pair_rule(
        {
            "wsname": "XBT/USD",
            "pair_decimals": 1,
            "lot_decimals": 8,
            "ordermin": "0.00005",
            "costmin": "0.5",
            "tick_size": "0.1",
            "status": "online",
        }
    )
    assert (rule.tick, rule.min_notional, rule.tradable) == (Decimal("0.1"), Decimal("0.5"), True)


@pytest.mark.parametrize("status", ["cancel_only", "post_only", "reduce_only"])
def test_a_pair_not_taking_limit_orders_is_not_tradable(status):
    rule = pair_rule({"wsname": "XBT/USD", "pair_decimals": 1, "lot_decimals": 8, "status": status})
    assert (rule.tradable, rule.reason) == (False, f"Kraken status {status}")


def test_an_error_answer_is_unreadable():
    with pytest.raises(RulesUnreadable, match="EService:Unavailable"):
        trading_rules(b'{"error":["EService:Unavailable"],"result":{}}')
