"""Execution takes each venue's trading rule once per trade: halted markets and minimum sizes."""

from decimal import Decimal

import pytest

from risk.models import RiskProfile
from tests.factories import paper_desk
from trading.execution.orders import grid_in, rule_of
from trading.execution.sizing import Grid
from trading.execution.trades import open_trade
from trading.models import Trade

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


def test_a_leg_on_a_market_its_venue_halts_rejects_the_trade_unsent_with_the_reason():
    opportunity = paper_desk()
    opportunity.sell_exchange.listings.update(enabled=False, halted_reason="Binance status BREAK")

    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert trade.state == Trade.State.REJECTED
    assert trade.failure_reason == "sellv does not trade BTC-USD now: Binance status BREAK"
    assert not trade.orders.exists()


def test_a_leg_under_its_venues_minimum_order_size_rejects_the_trade_unsent():
    opportunity = paper_desk()
    opportunity.buy_exchange.listings.update(min_size=D(2))

    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert trade.state == Trade.State.REJECTED
    assert trade.failure_reason == "1 BTC is under buyv's minimum order size of 2 BTC"
    assert not trade.orders.exists()


def test_the_grid_is_the_listings_rule():
    opportunity = paper_desk()
    listing = opportunity.buy_exchange.listings.get()
    listing.min_size, listing.min_notional = D("0.001"), D(5)
    listing.save()

    rule = rule_of(opportunity.buy_exchange, opportunity.market)

    assert rule == listing.trading_rule()
    assert grid_in(rule) == Grid(listing.tick_size, listing.lot_size, D(5), D("0.001"))
