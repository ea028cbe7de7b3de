"""A trade whose legs no order could balance is closed by a person, its residual kept as
inventory: the trade leaves the exposure, its cash PnL is realised, nothing is booked, and the
kill switch still counts it as a failed trade."""

from decimal import Decimal

import pytest

from portfolio.models import LedgerEntry
from tests.factories import OpportunityFactory, partially_filled_trade, trade_with_legs
from trading.execution.desk import consecutive_failures
from trading.execution.trades import keep_residual
from trading.models import Order, Trade, TradeEvent
from trading.selectors import open_imbalances

pytestmark = pytest.mark.django_db


def test_keeping_the_residual_closes_the_trade_with_its_cash_pnl_and_leaves_the_exposure():
    trade = partially_filled_trade()
    assert open_imbalances(mode="paper")  # counted while open
    entries = LedgerEntry.objects.count()

    refused = keep_residual(trade, note="  sold by hand\non the venue ", by="alice")

    trade.refresh_from_db()
    assert refused == ""
    assert (trade.state, trade.residual) == (Trade.State.CLOSED, Decimal("0.005"))
    # 0.995 * 102 - 1 * 100 - 0.1 - 0.1
    assert trade.realised_net_profit == Decimal("1.29")
    assert open_imbalances(mode="paper") == {}
    assert LedgerEntry.objects.count() == entries  # the ledger already holds the residual
    event = TradeEvent.objects.filter(trade=trade).latest("id")
    assert (event.from_state, event.to_state) == ("partially_filled", "closed")
    assert event.detail == "0.005 BTC kept as inventory by alice: sold by hand on the venue"


def test_a_closed_residual_still_counts_as_a_failed_trade_for_the_kill_switch():
    trade_with_legs(OpportunityFactory())  # an older good one
    keep_residual(partially_filled_trade(), note="kept", by="alice")

    assert consecutive_failures("paper") == 1


@pytest.mark.parametrize(
    ("setup", "note", "says"),
    [
        ("open", "   ", "Say what is done with the residual."),
        ("closed", "kept", "is closed, not partially filled"),
        ("in flight", "kept", "has an order still in flight"),
        ("balanced", "kept", "legs match: there is no residual to keep"),
    ],
)
def test_a_residual_that_cannot_be_kept_says_why_and_changes_nothing(setup, note, says):
    if setup == "closed":
        trade = trade_with_legs(OpportunityFactory())
    elif setup == "balanced":
        trade = trade_with_legs(OpportunityFactory(), state="partially_filled")
    else:
        trade = partially_filled_trade()
    if setup == "in flight":
        trade.orders.filter(side="sell").update(state=Order.State.SUBMITTED)
    state = trade.state

    refused = keep_residual(trade, note=note, by="alice")

    trade.refresh_from_db()
    assert says in refused
    assert (trade.state, trade.residual) == (state, None)
