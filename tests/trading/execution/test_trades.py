"""A trade's way through execution: recorded, both legs placed, settled; refused venues, notices
and the one-legged alert. Figures are hand-computed (see each test)."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import transaction

import markets.venues.live
from markets import notices
from portfolio.models import LedgerEntry
from portfolio.services import open_account
from risk.models import RiskProfile
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    OpportunityFactory,
    RiskProfileFactory,
    paper_desk,
)
from tests.trading.execution.books import (
    FULL_SELL_BIDS,
    amount,
    events,
    execute,
    forget_books_and_orders,
    publish_books,
    publish_books_nothing_closes,
)
from trading.execution.orders import default_venue
from trading.execution.paper import PaperVenue
from trading.execution.recovery import recover_trades
from trading.execution.trades import open_trade, submit_trade
from trading.models import Fill, Order, Trade

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


def test_both_legs_fill_and_the_trade_closes_with_the_exact_realised_pnl():
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)
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
    assert (amount("buyv", "USD"), amount("buyv", "BTC")) == (D("900.1002"), D(1))
    assert (amount("sellv", "USD"), amount("sellv", "BTC")) == (D("101.9457"), D(4))


def test_no_fill_on_either_leg_fails_the_trade_with_the_reason():
    opportunity = paper_desk()

    trade = execute(opportunity)  # no books published for these venues

    assert trade.state == Trade.State.FAILED
    assert trade.failure_reason == "neither leg filled"
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).count() == 0


def test_the_size_is_cut_to_the_quote_balance_including_the_fee():
    opportunity = paper_desk(buy_funding={"USD": D(50)})

    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert trade.requested_size == D("0.4995")  # 50 / (100 * 1.001) = 0.49950..., in 0.0001s
    assert set(trade.orders.values_list("amount", flat=True)) == {D("0.4995")}


def test_no_size_records_a_rejected_trade_without_orders():
    opportunity = paper_desk(sell_funding={"USD": D(1)})

    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert trade.state == Trade.State.REJECTED
    assert "balances" in trade.failure_reason
    assert not trade.orders.exists()


def test_a_leg_under_its_venues_minimum_order_value_rejects_the_trade_unsent():
    opportunity = paper_desk()
    opportunity.sell_exchange.listings.update(min_notional=D(200))

    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert trade.state == Trade.State.REJECTED
    assert trade.failure_reason == (
        "1 BTC at 102 is worth 102 USD, under sellv's minimum order value of 200"
    )
    assert not trade.orders.exists()


def test_a_second_open_trade_for_the_same_opportunity_returns_none():
    opportunity = paper_desk()
    profile = RiskProfile.objects.get()
    open_trade(opportunity=opportunity, mode="paper", profile=profile)

    assert open_trade(opportunity=opportunity, mode="paper", profile=profile) is None
    assert Order.objects.count() == 2


class Placing(PaperVenue):
    """Remembers every order it is asked to place."""

    def __init__(self) -> None:
        super().__init__(max_book_age_s=5)
        self.placed = []

    async def place_ioc(self, request):
        self.placed.append(request)
        return await super().place_ioc(request)


def live_desk_on(sell_slug: str):
    """A live profile and accounts on buyv and `sell_slug` for BTC-USD, and an opportunity."""
    market = MarketFactory(symbol="BTC-USD")
    buy, sell = ExchangeFactory(slug="buyv"), ExchangeFactory(slug=sell_slug)
    for exchange in (buy, sell):
        ListingFactory(exchange=exchange, market=market)
    open_account(exchange=buy, mode="live", funding={"USD": D(1000)})
    open_account(exchange=sell, mode="live", funding={"BTC": D(5)})
    profile = RiskProfileFactory(name="live test", mode="live")
    profile.allowed_exchanges.set([buy, sell])
    profile.allowed_markets.set([market])
    return profile, OpportunityFactory(market=market, buy_exchange=buy, sell_exchange=sell)


def test_a_live_trade_on_a_venue_without_an_orders_module_is_rejected_before_any_leg_is_placed():
    profile, opportunity = live_desk_on("okx")  # okx has no orders module
    publish_books(FULL_SELL_BIDS)
    placing = Placing()

    def venue_for(exchange, mode, profile):
        # The buy venue could trade; okx's live venue is what the desk would really get.
        return placing if exchange.slug == "buyv" else default_venue(exchange, mode, profile)

    trade = open_trade(opportunity=opportunity, mode="live", profile=profile)
    submit_trade(trade=trade, venue_for=venue_for, profile=profile)

    trade.refresh_from_db()
    with pytest.raises(markets.venues.live.NotTradable) as refused:
        markets.venues.live.live_venue(opportunity.sell_exchange)
    assert (trade.state, trade.failure_reason) == (Trade.State.REJECTED, str(refused.value))
    assert placing.placed == []
    assert set(trade.orders.values_list("state", flat=True)) == {Order.State.CANCELED}
    assert not Fill.objects.exists() and not LedgerEntry.objects.exclude(kind="deposit").exists()
    assert recover_trades(older_than_s=0) == []  # nothing left for recovery to finish


@pytest.mark.django_db(transaction=True)
def test_each_state_change_of_a_trade_publishes_a_trades_notice_once_committed(heard):
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)
    trades = heard(notices.TRADES)

    try:
        with transaction.atomic():
            trade = execute(opportunity)
            before_commit = trades.notices(wait_s=0.05)
        after_commit = trades.notices()
    finally:
        forget_books_and_orders()

    assert before_commit == []
    # One per state change (submitted, filled, closed) and one per leg recorded.
    assert events(trade) == ["submitted", "filled", "closed"]
    assert len(after_commit) == len(events(trade)) + trade.orders.count()
    assert {n["kind"] for n in after_commit} == {notices.TRADES}


def test_a_hedged_trade_alerts_once_with_its_id(alerts_sent, django_capture_on_commit_callbacks):
    opportunity = paper_desk()
    publish_books([(D("102.5"), D("0.3")), (D("101.9"), D(2))])

    with django_capture_on_commit_callbacks(execute=True):
        trade = execute(opportunity)

    assert events(trade) == ["submitted", "partially_filled", "hedged", "closed"]
    assert alerts_sent == [
        (
            "Arbitrage desk: one-legged trade",
            f"Trade {trade.pk} is one-legged: buy filled 1, sell filled 0.3 of 1",
        )
    ]


def test_a_trade_left_open_alerts_once_however_often_it_is_retried(
    alerts_sent, django_capture_on_commit_callbacks
):
    opportunity = paper_desk()
    publish_books_nothing_closes()

    with django_capture_on_commit_callbacks(execute=True):
        trade = execute(opportunity)
        cache.clear()  # past the alerts' quiet window
        recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert trade.state == Trade.State.PARTIALLY_FILLED
    assert trade.orders.filter(purpose=Order.Purpose.HEDGE).count() == 2
    assert [body for _, body in alerts_sent] == [
        f"Trade {trade.pk} is one-legged: buy filled 1, sell filled 0.3 of 1"
    ]


def test_a_clean_trade_sends_no_alert(alerts_sent, django_capture_on_commit_callbacks):
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)

    with django_capture_on_commit_callbacks(execute=True):
        trade = execute(opportunity)

    assert trade.state == Trade.State.CLOSED
    assert alerts_sent == []
