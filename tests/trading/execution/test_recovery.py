"""Recovery: a stopped worker's trade is finished from what the venues report, or failed."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

from markets.venues.live import NotTradable
from markets.venues.orders import OrderUnknown
from portfolio.models import LedgerEntry
from risk.models import RiskProfile
from tests.factories import OpportunityFactory, paper_desk
from tests.trading.execution.books import (
    FULL_SELL_BIDS,
    amount,
    events,
    execute,
    publish_books,
    publish_books_nothing_closes,
)
from trading.execution.orders import client_order_id
from trading.execution.paper import PaperVenue
from trading.execution.recovery import recover_trades
from trading.execution.trades import open_trade
from trading.models import Order, Trade

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


class WorkerKilled(BaseException):
    """Stands in for the worker process dying."""


class DiesOnSell(PaperVenue):
    async def place_ioc(self, request):
        if request.side == "sell":
            raise WorkerKilled
        return await super().place_ioc(request)


def test_a_worker_killed_between_legs_leaves_a_trade_the_next_run_finishes():
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)
    with pytest.raises(WorkerKilled):
        execute(opportunity, venue_for=lambda e, m, p: DiesOnSell(max_book_age_s=5))
    trade = Trade.objects.get()
    assert trade.state == Trade.State.SUBMITTED
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL).exists()

    touched = recover_trades(older_than_s=0)

    # The buy was placed and is found by its client order id; the sell never reached the venue
    # and is hedged: sell 1 with limit 101.49 -> 0.3 @ 102.5 + 0.7 @ 102 (= the full-fill PnL).
    trade.refresh_from_db()
    assert touched == [trade.pk]
    assert trade.state == Trade.State.CLOSED
    assert events(trade) == ["submitted", "partially_filled", "hedged", "closed"]
    sell = trade.orders.get(purpose=Order.Purpose.LEG, side="sell")
    assert (sell.state, sell.error) == (Order.State.CANCELED, "the venue has no such order")
    assert trade.realised_net_profit == D("2.0459")


def test_a_trade_stuck_in_pending_is_failed_and_never_placed():
    opportunity = paper_desk()
    trade = open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert (trade.state, trade.failure_reason) == ("failed", "worker stopped before placing orders")
    assert set(trade.orders.values_list("state", flat=True)) == {Order.State.CANCELED}


def test_recent_trades_are_left_to_their_worker():
    opportunity = paper_desk()
    open_trade(opportunity=opportunity, mode="paper", profile=RiskProfile.objects.get())

    assert recover_trades() == []


class LosesHedgeAnswers(PaperVenue):
    """Fills like paper, but a hedge's answer is lost and, once `lookups_fail`, so are the
    lookups of the first hedge: the venue took (and filled) it, the desk cannot learn it yet."""

    lookups_fail = False
    hedges_sent: list[str] = []

    async def place_ioc(self, request):
        report = await super().place_ioc(request)
        if "hedge" in request.client_order_id:
            self.hedges_sent.append(request.client_order_id)
            raise OrderUnknown("answer lost")
        return report

    async def find_order(self, request):
        if request.client_order_id.endswith("hedge-1") and self.lookups_fail:
            raise OrderUnknown("lookup timed out")
        return await super().find_order(request)


def test_recovery_sends_no_second_hedge_while_the_first_ones_fate_is_unknown():
    opportunity = paper_desk()
    publish_books([(D("102.5"), D("0.3")), (D("101.9"), D(2))])
    LosesHedgeAnswers.hedges_sent, LosesHedgeAnswers.lookups_fail = [], False
    venue_for = lambda e, m, p: LosesHedgeAnswers(max_book_age_s=5)  # noqa: E731
    trade = execute(opportunity, venue_for=venue_for)
    assert trade.state == Trade.State.PARTIALLY_FILLED
    LosesHedgeAnswers.lookups_fail = True

    recover_trades(older_than_s=0, venue_for=venue_for)

    # hedge-1 filled the 0.7 at the venue: a hedge-2 would sell it again.
    assert LosesHedgeAnswers.hedges_sent == [client_order_id(trade, "hedge-1")]
    assert trade.orders.get(purpose=Order.Purpose.HEDGE).state == Order.State.SUBMITTED
    trade.refresh_from_db()
    assert trade.state == Trade.State.PARTIALLY_FILLED


def paper(exchange, mode, profile):
    return PaperVenue(max_book_age_s=5)


class AnotherPassMeanwhile(PaperVenue):
    """Before the venue takes the first order it is handed, another recovery pass runs whole
    (in a thread of its own, with its own database connection)."""

    raced = False

    async def place_ioc(self, request):
        if not AnotherPassMeanwhile.raced:
            AnotherPassMeanwhile.raced = True
            other = threading.Thread(target=self.other_pass)
            other.start()
            other.join()
        return await super().place_ioc(request)

    @staticmethod
    def other_pass():
        AnotherPassMeanwhile.touched = recover_trades(older_than_s=0, venue_for=paper)
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_second_recovery_pass_skips_a_trade_the_first_is_working():
    opportunity = paper_desk()
    publish_books_nothing_closes()
    trade = execute(opportunity)
    assert trade.state == Trade.State.PARTIALLY_FILLED
    publish_books([(D(102), D(5))])  # the market comes back: a hedge fills now
    AnotherPassMeanwhile.raced = False

    recover_trades(older_than_s=0, venue_for=lambda e, m, p: AnotherPassMeanwhile(max_book_age_s=5))

    # The other pass left the trade alone: it neither took the hedge on its way for refused
    # nor sent one of its own. One hedge sold the 0.7, and the ledger holds what the venue did.
    assert AnotherPassMeanwhile.touched == []
    trade.refresh_from_db()
    assert trade.state == Trade.State.CLOSED
    hedges = trade.orders.filter(purpose=Order.Purpose.HEDGE).exclude(state=Order.State.CANCELED)
    assert list(hedges.values_list("client_order_id", "filled_amount")) == [
        (client_order_id(trade, "hedge-2"), D("0.7"))
    ]
    sold = sum(
        caches["books"].get(f"paper-order:{cid}").filled
        for cid in trade.orders.filter(side="sell").values_list("client_order_id", flat=True)
    )
    assert (sold, amount("sellv", "BTC")) == (1, 4)


class NeverGetsHedges(PaperVenue):
    """A hedge's request never reaches the venue, and the client cannot tell."""

    async def place_ioc(self, request):
        if "hedge" in request.client_order_id:
            raise OrderUnknown("no answer")
        return await super().place_ioc(request)


def test_an_order_the_venue_has_not_seen_is_taken_as_never_placed_only_past_the_cutoff():
    opportunity = paper_desk()
    publish_books([(D("102.5"), D("0.3")), (D("101.9"), D(2))])
    trade = execute(opportunity, venue_for=lambda e, m, p: NeverGetsHedges(max_book_age_s=5))
    Trade.objects.filter(pk=trade.pk).update(state_changed_at=timezone.now() - timedelta(hours=1))
    hedge = trade.orders.get(purpose=Order.Purpose.HEDGE)

    recover_trades()

    # Created moments ago, it may still be on its way: "not found" is no answer yet.
    hedge.refresh_from_db()
    assert hedge.state == Order.State.SUBMITTED
    assert trade.orders.filter(purpose=Order.Purpose.HEDGE).count() == 1

    Order.objects.filter(pk=hedge.pk).update(created_at=timezone.now() - timedelta(hours=1))
    recover_trades()

    hedge.refresh_from_db()
    assert (hedge.state, hedge.error) == (Order.State.CANCELED, "the venue has no such order")
    trade.refresh_from_db()
    assert trade.state == Trade.State.CLOSED  # hedge-2 sold the 0.7


class CredentialsGoneOnce:
    """The first venue asked for cannot be had (its key removed, say); the rest are paper."""

    def __init__(self):
        self.failed = False

    def __call__(self, exchange, mode, profile):
        if not self.failed:
            self.failed = True
            raise NotTradable(f"{exchange.slug} has no API key")
        return PaperVenue(max_book_age_s=5)


def test_a_trade_whose_recovery_fails_does_not_stop_the_others():
    publish_books(FULL_SELL_BIDS)
    opportunity = paper_desk()
    with pytest.raises(WorkerKilled):
        execute(opportunity, venue_for=lambda e, m, p: DiesOnSell(max_book_age_s=5))
    first = Trade.objects.get()
    second = open_trade(
        opportunity=OpportunityFactory(
            market=opportunity.market,
            buy_exchange=opportunity.buy_exchange,
            sell_exchange=opportunity.sell_exchange,
        ),
        mode="paper",
        profile=RiskProfile.objects.get(),
    )

    touched = recover_trades(older_than_s=0, venue_for=CredentialsGoneOnce())

    first.refresh_from_db()
    second.refresh_from_db()
    assert sorted(touched) == [first.pk, second.pk]
    assert first.state == Trade.State.SUBMITTED  # left for the next pass
    assert second.state == Trade.State.FAILED
