"""Settlement into the ledger: fills and fees booked once, every balance its ledger's sum."""

from decimal import Decimal

import pytest

from markets.venues.orders import FillReport, OrderReport
from portfolio.models import Balance, LedgerEntry
from risk.models import RiskProfile
from tests.factories import paper_desk
from tests.trading.execution.books import FULL_SELL_BIDS, amount, execute, publish_books
from trading.execution.settlement import imbalance, realised_pnl, record_order_report
from trading.execution.trades import open_trade
from trading.models import Order

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


def submitted_buy():
    """The buy leg of a fresh paper trade, marked as sent to its venue."""
    trade = open_trade(opportunity=paper_desk(), mode="paper", profile=RiskProfile.objects.get())
    trade.orders.update(state=Order.State.SUBMITTED)
    return trade.orders.get(side="buy")


def test_every_balance_equals_its_ledger_sum_after_a_trade():
    publish_books(FULL_SELL_BIDS)

    execute(paper_desk())

    for balance in Balance.objects.all():
        entries = LedgerEntry.objects.filter(account=balance.account, asset=balance.asset)
        assert sum(entries.values_list("amount", flat=True)) == balance.amount


def test_a_fill_books_the_base_the_quote_and_the_fee_on_the_account():
    order = submitted_buy()
    report = OrderReport("v-1", fills=(FillReport(D(100), D("0.5"), D("0.05")),))

    assert record_order_report(order=order, report=report)

    # 1000 USD - 0.5 * 100 - 0.05 fee.
    assert (order.state, order.filled_amount, order.average_price) == (
        Order.State.PARTIALLY_FILLED,
        D("0.5"),
        D(100),
    )
    assert (amount("buyv", "USD"), amount("buyv", "BTC")) == (D("949.95"), D("0.5"))
    assert imbalance(order.trade) == D("0.5")


def test_a_fee_taken_in_another_asset_is_booked_in_that_asset():
    order = submitted_buy()
    fill = FillReport(D(100), D(1), D("0.1"), fee_asset="BTC", fee_charged=D("0.001"))

    record_order_report(order=order, report=OrderReport("v-1", fills=(fill,)))

    assert (amount("buyv", "USD"), amount("buyv", "BTC")) == (D(900), D("0.999"))


def test_a_report_recorded_twice_is_booked_once():
    order = submitted_buy()
    report = OrderReport("v-1", fills=(FillReport(D(100), D(1), D("0.1")),))
    record_order_report(order=order, report=report)

    assert record_order_report(order=order, report=report) is False
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).count() == 2


def test_an_order_the_venue_never_got_is_cancelled_with_the_reason():
    order = submitted_buy()

    record_order_report(order=order, report=None, error="the venue has no such order")

    assert (order.state, order.error) == (Order.State.CANCELED, "the venue has no such order")
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).exists()


def test_realised_pnl_is_sells_less_buys_less_every_fee():
    order = submitted_buy()
    sell = order.trade.orders.get(side="sell")
    record_order_report(
        order=order, report=OrderReport("b", fills=(FillReport(D(100), D(1), D("0.1")),))
    )
    record_order_report(
        order=sell,
        report=OrderReport(
            "s",
            fills=(FillReport(D(103), D("0.5"), D("0.1")), FillReport(D(102), D("0.5"), D("0.1"))),
        ),
    )

    assert realised_pnl(order.trade) == D("102.5") - D(100) - D("0.3")


def test_fills_reported_for_an_order_recorded_otherwise_alert_the_desk(
    alerts_sent, django_capture_on_commit_callbacks
):
    order = submitted_buy()
    assert record_order_report(order=order, report=None, error="the venue has no such order")
    report = OrderReport("v-1", fills=(FillReport(D(100), D("0.5"), D("0.05")),))

    with django_capture_on_commit_callbacks(execute=True):
        assert not record_order_report(order=order, report=report)

    # The venue filled 0.5 the ledger does not hold: a person must book it.
    assert alerts_sent == [
        (
            "Arbitrage desk: fills not booked",
            f"order {order.client_order_id}: the venue reports 0.5 filled, but it is recorded "
            "canceled with 0: the ledger misses the difference",
        )
    ]
    assert not LedgerEntry.objects.filter(order=order).exists()


def test_the_same_report_twice_books_once_and_alerts_nothing(alerts_sent):
    order = submitted_buy()
    report = OrderReport("v-1", fills=(FillReport(D(100), D("0.5"), D("0.05")),))
    assert record_order_report(order=order, report=report)

    assert not record_order_report(order=order, report=report)

    assert alerts_sent == []
    assert amount("buyv", "BTC") == D("0.5")
