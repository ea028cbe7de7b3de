"""Execution services: both legs fill, a short leg is hedged or unwound, a dropped worker's
trade is recovered. Figures are hand-computed (see each test)."""

import time
from decimal import Decimal

import pytest
from django.core.cache import caches

from markets.venues.orders import FillReport, OrderReport
from portfolio.models import Balance, LedgerEntry
from risk.models import RiskProfile
from tests.factories import paper_desk, publish_test_book
from trading import services
from trading.execution.paper import PaperVenue
from trading.models import Order, Trade
from trading.signals import trade_changed

D = Decimal
BUY_ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
BUY_BIDS = [(D("99.5"), D(1))]
SELL_ASKS = [(D(103), D(1))]


@pytest.fixture(autouse=True)
def forget_paper_orders(db):
    for venue in ("buyv", "sellv"):
        caches["books"].delete(f"book:{venue}:BTC-USD")
    yield
    for cid in Order.objects.values_list("client_order_id", flat=True):
        caches["books"].delete(f"paper-order:{cid}")


def books(sell_bids):
    publish_test_book("buyv", "BTC-USD", bids=BUY_BIDS, asks=BUY_ASKS)
    publish_test_book("sellv", "BTC-USD", bids=sell_bids, asks=SELL_ASKS)


def execute(opportunity, venue_for=services.default_venue) -> Trade:
    profile = RiskProfile.objects.get(is_active=True)
    trade = services.open_trade(opportunity=opportunity, mode="paper", profile=profile)
    services.submit_trade(trade=trade, venue_for=venue_for, profile=profile)
    trade.refresh_from_db()
    return trade


def amount(venue: str, asset: str) -> Decimal:
    return Balance.objects.get(account__exchange__slug=venue, asset=asset).amount


def events(trade: Trade) -> list[str]:
    return [e.to_state for e in trade.events.all()]


@pytest.mark.django_db
def test_both_legs_fill_and_the_trade_closes_with_the_exact_realised_pnl():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])
    # The cross as the detector reports it over these books: VWAPs, and the levels walked to.
    opportunity.buy_vwap, opportunity.buy_limit = D("99.8"), D(100)
    opportunity.sell_vwap, opportunity.sell_limit = D("102.15"), D(102)
    opportunity.save()

    trade = execute(opportunity)

    # Buy 0.4 @ 99.5 + 0.6 @ 100 = 99.8, fee 10 bps = 0.0998.
    # Sell 0.3 @ 102.5 + 0.7 @ 102 = 102.15, fee 20 bps = 0.2043.
    # PnL = 102.15 - 99.8 - 0.0998 - 0.2043 = 2.0459, as expected: the books did not move.
    assert trade.state == Trade.State.CLOSED
    assert trade.realised_net_profit == trade.expected_net_profit == D("2.0459")
    assert events(trade) == ["submitted", "filled", "closed"]
    buy, sell = trade.orders.order_by("side")
    assert (buy.filled_amount, buy.average_price, buy.fee) == (D(1), D("99.8"), D("0.0998"))
    assert (sell.filled_amount, sell.average_price, sell.fee) == (D(1), D("102.15"), D("0.2043"))
    assert buy.client_order_id == services.client_order_id(trade, "buy")
    assert (amount("buyv", "USD"), amount("buyv", "BTC")) == (D("900.1002"), D(1))
    assert (amount("sellv", "USD"), amount("sellv", "BTC")) == (D("101.9457"), D(4))


@pytest.mark.django_db
def test_client_order_ids_differ_when_trade_numbers_start_again():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])
    profile = RiskProfile.objects.get(is_active=True)
    trade = services.open_trade(opportunity=opportunity, mode="paper", profile=profile)
    # A database recreated or restored numbers its trades from 1 again, while the paper cache
    # (Redis) or the venue still holds the orders of the trade numbered so before, under the
    # ids that trade's orders had: its number and leg alone, they would be this trade's too.
    old = OrderReport("paper-old", fills=(FillReport(D(50), D("0.1"), D(0)),))
    for side in ("buy", "sell"):
        caches["books"].set(f"paper-order:arb-{trade.pk}-{side}", old)

    services.submit_trade(trade=trade, venue_for=services.default_venue, profile=profile)
    trade.refresh_from_db()

    ids = set(trade.orders.values_list("client_order_id", flat=True))
    created = f"{int(trade.created_at.timestamp() * 1000):x}"
    assert ids == {f"arb-{trade.pk}-{created}-buy", f"arb-{trade.pk}-{created}-sell"}
    # Its legs filled at this book's prices, not the old order's 0.1 @ 50.
    assert (trade.state, trade.realised_net_profit) == ("closed", D("2.0459"))


@pytest.mark.django_db
def test_every_balance_equals_its_ledger_sum_after_a_trade():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])

    execute(opportunity)

    for balance in Balance.objects.all():
        entries = LedgerEntry.objects.filter(account=balance.account, asset=balance.asset)
        assert sum(entries.values_list("amount", flat=True)) == balance.amount


@pytest.mark.django_db
def test_a_short_sell_leg_is_hedged_within_the_slippage_and_closed():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D("101.9"), D(2))])

    trade = execute(opportunity)

    # Sell leg fills 0.3 @ 102.5; the hedge sells 0.7 with limit 102 * (1 - 50 bps) = 101.49,
    # filling at 101.9. Sells 30.75 + 71.33 = 102.08, fees 0.0998 + 0.0615 + 0.14266.
    assert trade.state == Trade.State.CLOSED
    assert events(trade) == ["submitted", "partially_filled", "hedged", "closed"]
    hedge = trade.orders.get(purpose=Order.Purpose.HEDGE)
    assert (hedge.side, hedge.limit_price, hedge.filled_amount) == ("sell", D("101.49"), D("0.7"))
    assert hedge.client_order_id == services.client_order_id(trade, "hedge-1")
    assert trade.realised_net_profit == D("1.97604")
    assert amount("sellv", "BTC") == D(4)


@pytest.mark.django_db
def test_when_the_hedge_finds_no_price_the_filled_leg_is_unwound():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(90), D(5))])

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


@pytest.mark.django_db
def test_an_imbalance_nothing_can_close_stays_open_and_counts_in_exposure():
    from portfolio.selectors import open_imbalances

    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(90), D(5))])
    publish_test_book("buyv", "BTC-USD", bids=[(D(80), D(1))], asks=BUY_ASKS)

    trade = execute(opportunity)

    assert trade.state == Trade.State.PARTIALLY_FILLED
    assert open_imbalances(mode="paper") == {("buyv", "BTC"): D(1), ("sellv", "BTC"): D("-0.3")}


@pytest.mark.django_db
def test_no_fill_on_either_leg_fails_the_trade_with_the_reason():
    opportunity = paper_desk()

    trade = execute(opportunity)  # no books published for these venues

    assert trade.state == Trade.State.FAILED
    assert trade.failure_reason == "neither leg filled"
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).count() == 0


@pytest.mark.django_db
def test_size_is_cut_to_the_quote_balance_including_the_fee():
    opportunity = paper_desk(buy_funding={"USD": D(50)})
    profile = RiskProfile.objects.get()

    size = services.trade_size(opportunity=opportunity, mode="paper", profile=profile)

    assert size == D("0.4995")  # 50 / (100 * 1.001) = 0.49950..., in lots of 0.0001


@pytest.mark.django_db
def test_no_size_records_a_rejected_trade_without_orders():
    opportunity = paper_desk(sell_funding={"USD": D(1)})
    profile = RiskProfile.objects.get()

    trade = services.open_trade(opportunity=opportunity, mode="paper", profile=profile)

    assert trade.state == Trade.State.REJECTED
    assert "balances" in trade.failure_reason
    assert not trade.orders.exists()


@pytest.mark.django_db
def test_a_second_open_trade_for_the_same_opportunity_returns_none():
    opportunity = paper_desk()
    profile = RiskProfile.objects.get()
    services.open_trade(opportunity=opportunity, mode="paper", profile=profile)

    assert services.open_trade(opportunity=opportunity, mode="paper", profile=profile) is None
    assert Order.objects.count() == 2


class WorkerKilled(BaseException):
    """Stands in for the worker process dying."""


class DiesOnSell(PaperVenue):
    async def place_ioc(self, request):
        if request.side == "sell":
            raise WorkerKilled
        return await super().place_ioc(request)


@pytest.mark.django_db
def test_a_worker_killed_between_legs_leaves_a_trade_the_next_run_finishes():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])
    with pytest.raises(WorkerKilled):
        execute(opportunity, venue_for=lambda e, m, p: DiesOnSell(max_book_age_s=5))
    trade = Trade.objects.get()
    assert trade.state == Trade.State.SUBMITTED
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).exists()

    touched = services.recover_trades(older_than_s=0)

    # The buy was placed and is found by its client order id; the sell never reached the venue
    # and is hedged: sell 1 with limit 101.49 -> 0.3 @ 102.5 + 0.7 @ 102 (= the full-fill PnL).
    trade.refresh_from_db()
    assert touched == [trade.pk]
    assert trade.state == Trade.State.CLOSED
    assert events(trade) == ["submitted", "partially_filled", "hedged", "closed"]
    sell = trade.orders.get(purpose=Order.Purpose.LEG, side="sell")
    assert (sell.state, sell.error) == (Order.State.CANCELED, "the venue has no such order")
    assert trade.realised_net_profit == D("2.0459")


class AnswerUnreadable(PaperVenue):
    """Places the buy, then fails on the answer, as a client meeting a reply it cannot parse."""

    async def place_ioc(self, request):
        report = await super().place_ioc(request)
        if request.side == "buy":
            raise KeyError("commissionAsset")
        return report


@pytest.mark.django_db
def test_an_order_whose_answer_cannot_be_read_is_looked_up_not_taken_as_refused():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])

    trade = execute(opportunity, venue_for=lambda e, m, p: AnswerUnreadable(max_book_age_s=5))

    # The buy did fill at the venue: taking it as refused would have unwound the sell.
    buy = trade.orders.get(side="buy")
    assert (trade.state, buy.state) == (Trade.State.SUBMITTED, Order.State.SUBMITTED)
    assert buy.error == "left for recovery: KeyError: 'commissionAsset'"
    assert not trade.orders.exclude(purpose=Order.Purpose.LEG).exists()

    services.recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert events(trade) == ["submitted", "filled", "closed"]
    assert trade.realised_net_profit == D("2.0459")
    assert (amount("buyv", "BTC"), amount("sellv", "BTC")) == (D(1), D(4))


@pytest.mark.django_db
def test_a_trade_stuck_in_pending_is_failed_and_never_placed():
    opportunity = paper_desk()
    profile = RiskProfile.objects.get()
    trade = services.open_trade(opportunity=opportunity, mode="paper", profile=profile)

    services.recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert (trade.state, trade.failure_reason) == ("failed", "worker stopped before placing orders")
    assert set(trade.orders.values_list("state", flat=True)) == {Order.State.CANCELED}


@pytest.mark.django_db
def test_recent_trades_are_left_to_their_worker():
    opportunity = paper_desk()
    profile = RiskProfile.objects.get()
    services.open_trade(opportunity=opportunity, mode="paper", profile=profile)

    assert services.recover_trades() == []


@pytest.mark.django_db(transaction=True)
def test_trade_changed_is_sent_after_commit_for_every_state_change():
    opportunity = paper_desk()
    books([(D("102.5"), D("0.3")), (D(102), D(2))])
    received = []

    def receiver(sender, trade_id, **kwargs):
        received.append(trade_id)

    trade_changed.connect(receiver)
    try:
        trade = execute(opportunity)
    finally:
        trade_changed.disconnect(receiver)
        for cid in Order.objects.values_list("client_order_id", flat=True):
            caches["books"].delete(f"paper-order:{cid}")

    assert set(received) == {trade.pk}
    assert len(received) >= 3  # submitted, filled, closed (and each leg's fills)


@pytest.mark.django_db(transaction=True)
def test_request_execution_enqueues_the_task_only_once_the_transaction_commits(monkeypatch):
    from django.db import transaction

    from trading.tasks import execute_opportunity

    opportunity = paper_desk()
    sent = []
    monkeypatch.setattr(execute_opportunity, "delay", lambda *a, **kw: sent.append((a, kw)))

    with transaction.atomic():
        services.request_execution(opportunity)
        assert sent == []

    [(args, kwargs)] = sent
    assert args == (opportunity.pk,)
    assert (kwargs["mode"], kwargs["user_id"]) == ("paper", None)
    assert kwargs["deadline_ts"] > time.time()


@pytest.mark.parametrize(
    ("price", "tick", "side", "limit"),
    [
        (
            "99.800000000001",
            "0.01",
            "buy",
            "99.80",
        ),  # a buy never pays above the price it was given
        ("102.166666666667", "0.01", "sell", "102.17"),  # a sell never sells below it
        ("100.25", "0.5", "buy", "100.0"),
        ("100.25", "0.5", "sell", "100.5"),
        ("100.50", "0.5", "buy", "100.5"),  # on the grid already: unchanged
        ("0.123456789", None, "buy", "0.123456789"),  # no listing: as given
    ],
)
def test_limit_prices_are_put_on_the_venues_tick(price, tick, side, limit):
    assert services.on_tick(D(price), None if tick is None else D(tick), side) == D(limit)
