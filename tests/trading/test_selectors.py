"""Reads over trades: realised PnL per quote, open imbalances, decisions and the status panel."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from markets.heartbeat import record_engine_heartbeat
from portfolio.models import Mode
from risk.services import throw_kill_switch
from tests.factories import (
    ExchangeFactory,
    MarketFactory,
    OpportunityFactory,
    OrderFactory,
    RiskProfileFactory,
    TradeFactory,
    UserFactory,
)
from trading.models import Trade
from trading.selectors import (
    open_imbalances,
    realised_pnl,
    realised_pnl_today,
    recent_decisions,
    status_panel,
)

D = Decimal
pytestmark = pytest.mark.django_db


def closed(market: str, pnl: str, *, at=None, mode: str = Mode.PAPER, **fields) -> Trade:
    at = at or timezone.now()
    opportunity = OpportunityFactory(market=MarketFactory(symbol=market))
    return TradeFactory(
        opportunity=opportunity, mode=mode, realised_net_profit=D(pnl), created_at=at, **fields
    )


def test_realised_pnl_sums_closed_trades_per_quote_currency_and_mode():
    closed("BTC-USD", "2.5")
    closed("ETH-USD", "-1")
    closed("BTC-EUR", "3")
    closed("BTC-USD", "100", mode=Mode.LIVE)
    closed("BTC-USD", "50", state=Trade.State.FAILED)

    assert realised_pnl(mode=Mode.PAPER) == {"USD": D("1.5"), "EUR": D(3)}


def test_realised_pnl_today_counts_only_trades_closed_since_midnight_utc():
    closed("BTC-USD", "2")
    closed("BTC-USD", "7", at=timezone.now() - timedelta(days=1, hours=1))

    assert realised_pnl_today(mode=Mode.PAPER) == {"USD": D(2)}
    assert realised_pnl(mode=Mode.PAPER) == {"USD": D(9)}


def test_open_imbalances_are_the_legs_of_unclosed_trades_that_do_not_match():
    buy, sell = ExchangeFactory(slug="buyv"), ExchangeFactory(slug="sellv")

    def trade_with_legs(state: str, *fills: tuple) -> None:
        opportunity = OpportunityFactory(buy_exchange=buy, sell_exchange=sell)
        trade = TradeFactory(opportunity=opportunity, state=state, realised_net_profit=None)
        for exchange, side, filled in fills:
            OrderFactory(trade=trade, exchange=exchange, side=side, filled_amount=D(filled))

    trade_with_legs(Trade.State.PARTIALLY_FILLED, (buy, "buy", "1"), (sell, "sell", "0.3"))
    trade_with_legs(Trade.State.FILLED, (buy, "buy", "1"), (sell, "sell", "1"))
    # A closed trade's legs, matched or not, are no longer open.
    trade_with_legs(Trade.State.CLOSED, (buy, "buy", "1"))

    assert open_imbalances(mode=Mode.PAPER) == {("buyv", "BTC"): D(1), ("sellv", "BTC"): D("-0.3")}
    assert open_imbalances(mode=Mode.LIVE) == {}


def test_recent_decisions_are_the_profiles_markets_newest_first_with_the_trade_taken():
    btc, eth = MarketFactory(symbol="BTC-USD"), MarketFactory(symbol="ETH-USD")
    profile = RiskProfileFactory(name="paper desk")
    profile.allowed_markets.set([btc])
    now = timezone.now()
    older = OpportunityFactory(market=btc, opened_at=now - timedelta(minutes=1))
    newer = OpportunityFactory(market=btc, opened_at=now)
    OpportunityFactory(market=eth, opened_at=now)
    TradeFactory(opportunity=older, state=Trade.State.FAILED)

    decisions = recent_decisions(profile)

    assert [(o.pk, o.trade_state) for o in decisions] == [(newer.pk, ""), (older.pk, "failed")]


def test_the_status_panel_shows_each_active_profile_with_todays_pnl_and_the_switch(fresh_cache):
    profile = RiskProfileFactory(name="paper desk")
    RiskProfileFactory(name="idle", is_active=False)
    closed("BTC-USD", "4.25")
    throw_kill_switch(reason="drill", user=UserFactory())

    panel = status_panel()

    assert [(row.profile, row.pnl_today) for row in panel.profiles] == [(profile, D("4.25"))]
    assert (panel.kill_switch.is_on, panel.kill_switch.reason) == (True, "drill")
    assert (panel.engine_age_s, panel.feeds) == (None, {})


def test_the_status_panel_shows_the_engines_heartbeat_and_feeds(fresh_cache):
    record_engine_heartbeat({"feeds": {"kraken": {"state": "connected"}}})

    panel = status_panel()

    assert panel.engine_age_s is not None and panel.engine_age_s < 5
    assert panel.feeds == {"kraken": {"state": "connected"}}
