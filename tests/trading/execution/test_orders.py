"""Placing orders: which venue takes them, ids a retry finds, and answers that cannot be read."""

from decimal import Decimal

import pytest
from django.core.cache import caches

from markets.venues.live import NotTradable
from markets.venues.orders import FillReport, OrderReport
from risk.models import RiskProfile
from tests.factories import ExchangeFactory, RiskProfileFactory, paper_desk
from tests.trading.execution.books import FULL_SELL_BIDS, amount, events, execute, publish_books
from trading.execution.orders import client_order_id, default_venue
from trading.execution.paper import PaperVenue
from trading.execution.recovery import recover_trades
from trading.execution.trades import open_trade, submit_trade
from trading.models import Order, Trade

D = Decimal
pytestmark = pytest.mark.usefixtures("paper_books")


def test_legs_are_placed_under_ids_derived_from_the_trade():
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)

    trade = execute(opportunity)

    created = f"{int(trade.created_at.timestamp() * 1000):x}"
    assert client_order_id(trade, "buy") == f"arb-{trade.pk}-{created}-buy"
    assert set(trade.orders.values_list("client_order_id", flat=True)) == {
        client_order_id(trade, "buy"),
        client_order_id(trade, "sell"),
    }


def test_client_order_ids_differ_when_trade_numbers_start_again():
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)
    profile = RiskProfile.objects.get(is_active=True)
    trade = open_trade(opportunity=opportunity, mode="paper", profile=profile)
    # A database recreated or restored numbers its trades from 1 again, while the paper cache
    # (Redis) or the venue still holds the orders of the trade numbered so before, under the
    # ids that trade's orders had: its number and leg alone, they would be this trade's too.
    old = OrderReport("paper-old", fills=(FillReport(D(50), D("0.1"), D(0)),))
    for side in ("buy", "sell"):
        caches["books"].set(f"paper-order:arb-{trade.pk}-{side}", old)

    submit_trade(trade=trade, venue_for=default_venue, profile=profile)
    trade.refresh_from_db()

    ids = set(trade.orders.values_list("client_order_id", flat=True))
    created = f"{int(trade.created_at.timestamp() * 1000):x}"
    assert ids == {f"arb-{trade.pk}-{created}-buy", f"arb-{trade.pk}-{created}-sell"}
    # Its legs filled at this book's prices, not the old order's 0.1 @ 50.
    assert (trade.state, trade.realised_net_profit) == ("closed", D("2.0459"))


def test_paper_orders_go_to_the_paper_venue_with_the_profiles_book_age():
    profile = RiskProfileFactory(max_book_age_ms=1500)

    venue = default_venue(ExchangeFactory(slug="kraken"), "paper", profile)

    assert isinstance(venue, PaperVenue) and venue.max_book_age_s == 1.5


def test_live_orders_on_a_venue_without_an_orders_module_are_refused_clearly():
    with pytest.raises(NotTradable, match="okx"):
        default_venue(ExchangeFactory(slug="okx"), "live", RiskProfileFactory(mode="live"))


class AnswerUnreadable(PaperVenue):
    """Places the buy, then fails on the answer, as a client meeting a reply it cannot parse."""

    async def place_ioc(self, request):
        report = await super().place_ioc(request)
        if request.side == "buy":
            raise KeyError("commissionAsset")
        return report


def test_an_order_whose_answer_cannot_be_read_is_looked_up_not_taken_as_refused():
    opportunity = paper_desk()
    publish_books(FULL_SELL_BIDS)

    trade = execute(opportunity, venue_for=lambda e, m, p: AnswerUnreadable(max_book_age_s=5))

    # The buy did fill at the venue: taking it as refused would have unwound the sell.
    buy = trade.orders.get(side="buy")
    assert (trade.state, buy.state) == (Trade.State.SUBMITTED, Order.State.SUBMITTED)
    assert buy.error == "left for recovery: KeyError: 'commissionAsset'"
    assert not trade.orders.exclude(purpose=Order.Purpose.LEG).exists()

    recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert events(trade) == ["submitted", "filled", "closed"]
    assert trade.realised_net_profit == D("2.0459")
    assert (amount("buyv", "BTC"), amount("sellv", "BTC")) == (D(1), D(4))
