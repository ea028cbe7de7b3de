"""Hedge or unwind: a short leg is retried within the slippage, else the long leg traded back."""

from decimal import Decimal

import pytest

from tests.factories import paper_desk
from tests.trading.execution.books import (
    amount,
    events,
    execute,
    publish_books,
    publish_books_nothing_closes,
)
from trading.execution.orders import client_order_id
from trading.models import Order, Trade
from trading.selectors import open_imbalances

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


def test_a_short_sell_leg_is_hedged_within_the_slippage_and_closed():
    opportunity = paper_desk()
    publish_books([(D("102.5"), D("0.3")), (D("101.9"), D(2))])

    trade = execute(opportunity)

    # Sell leg fills 0.3 @ 102.5; the hedge sells 0.7 with limit 102 * (1 - 50 bps) = 101.49,
    # filling at 101.9. Sells 30.75 + 71.33 = 102.08, fees 0.0998 + 0.0615 + 0.14266.
    assert trade.state == Trade.State.CLOSED
    assert events(trade) == ["submitted", "partially_filled", "hedged", "closed"]
    hedge = trade.orders.get(purpose=Order.Purpose.HEDGE)
    assert (hedge.side, hedge.limit_price, hedge.filled_amount) == ("sell", D("101.49"), D("0.7"))
    assert hedge.client_order_id == client_order_id(trade, "hedge-1")
    assert trade.realised_net_profit == D("1.97604")
    assert amount("sellv", "BTC") == D(4)


def test_when_the_hedge_finds_no_price_the_filled_leg_is_unwound():
    opportunity = paper_desk()
    publish_books([(D("102.5"), D("0.3")), (D(90), D(5))])

    trade = execute(opportunity)

    # The hedge (limit 101.49) cannot fill against a bid of 90; the unwind sells the 0.7 bought
    # back on buyv with limit 99.8 * 0.995 = 99.301 and fills at 99.5 (69.65, fee 0.06965).
    # PnL = 30.75 + 69.65 - 99.8 - (0.0998 + 0.0615 + 0.06965) = 0.36905.
    assert trade.state == Trade.State.CLOSED
    assert events(trade) == ["submitted", "partially_filled", "unwound", "closed"]
    unwind = trade.orders.get(purpose=Order.Purpose.UNWIND)
    assert (unwind.exchange.slug, unwind.side, unwind.filled_amount) == ("buyv", "sell", D("0.7"))
    assert trade.orders.get(purpose=Order.Purpose.HEDGE).state == Order.State.CANCELED
    assert trade.realised_net_profit == D("0.36905")
    assert (amount("buyv", "BTC"), amount("sellv", "BTC")) == (D("0.3"), D("4.7"))


def test_an_imbalance_nothing_can_close_stays_open_and_counts_in_exposure():
    opportunity = paper_desk()
    publish_books_nothing_closes()

    trade = execute(opportunity)

    assert trade.state == Trade.State.PARTIALLY_FILLED
    assert open_imbalances(mode="paper") == {("buyv", "BTC"): D(1), ("sellv", "BTC"): D("-0.3")}


def test_an_imbalance_under_both_venues_lots_is_left_open_with_the_reason_once():
    opportunity = paper_desk()
    opportunity.buy_exchange.listings.update(lot_size=D(1))
    opportunity.sell_exchange.listings.update(lot_size=D(1))
    publish_books([(D("102.5"), D("0.3")), (D(90), D(5))])

    trade = execute(opportunity)

    # Both legs of 1, the sell filled 0.3: 0.7 BTC is under either venue's lot of 1.
    assert trade.state == Trade.State.PARTIALLY_FILLED
    assert trade.failure_reason == (
        "left open, no order sent: 0.7 BTC is under sellv's lot; 0.7 BTC is under buyv's lot"
    )
    assert not trade.orders.exclude(purpose=Order.Purpose.LEG).exists()
