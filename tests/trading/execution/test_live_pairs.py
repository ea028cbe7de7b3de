"""Issue 14: a live cross-venue trade on each pair of the real venue modules (Coinbase, Kraken,
Binance, and KuCoin with Kraken), each against its simulated venue over loopback, realises its
expected PnL exactly and leaves the desk's ledger equal to what the simulated venues hold for
the desk's keys."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet

from markets.models import ExchangeCredential
from tests.trading.execution.live import (
    FUNDING,
    PAIRS,
    SIZE,
    D,
    desk,
    ledger,
    venue_balances,
    venue_orders,
)
from trading.models import Order, Trade
from trading.tasks import execute_opportunity


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("buy_slug", "sell_slug", "net"), PAIRS, ids=[f"{b}-{s}" for b, s, _ in PAIRS]
)
def test_a_live_cross_venue_trade_realises_its_expected_pnl_and_the_ledger_is_the_venues(
    settings, sim, loop, buy_slug, sell_slug, net
):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    opportunity, keys = desk(sim, loop, buy_slug, sell_slug)

    trade = Trade.objects.get(pk=execute_opportunity(opportunity.pk, mode="live"))

    assert (trade.mode, trade.state, trade.failure_reason) == ("live", "closed", "")
    # Expected: the opportunity's net at each venue's taker fee; realised: the venues' fills.
    assert trade.expected_net_profit == opportunity.net_profit == net
    assert trade.realised_net_profit == trade.expected_net_profit
    legs = Order.objects.filter(trade=trade)
    assert sorted(legs.values_list("purpose", "side", "state", "filled_amount")) == [
        ("leg", "buy", "filled", SIZE),
        ("leg", "sell", "filled", SIZE),
    ]
    for side, slug in (("buy", buy_slug), ("sell", sell_slug)):
        placed, posts = venue_orders(sim, slug, trade, side)
        assert (list(placed), posts) == ([legs.get(side=side).venue_order_id], 1), slug
        balances, entries = ledger(slug)
        held = venue_balances(sim, slug, keys[slug])
        assert balances == entries == held, slug
        assert held != {a: v.normalize() for a, v in FUNDING.items()}  # the venue did trade


@pytest.mark.django_db(transaction=True)
def test_a_live_trade_started_from_the_engines_loop_signs_krakens_nonces_and_closes(
    settings, sim, loop
):
    # run_desk executes what the engine opened in Django's one thread for sync work
    # (`sync_to_async(execute)`); the Kraken leg draws its nonces from the database meanwhile.
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    opportunity, _ = desk(sim, loop, "coinbase", "kraken")

    async def from_the_engine() -> int:
        return await sync_to_async(execute_opportunity)(opportunity.pk, mode="live")

    trade = Trade.objects.get(pk=asyncio.run(from_the_engine()))

    assert (trade.state, trade.failure_reason) == ("closed", "")
    assert trade.realised_net_profit == opportunity.net_profit == D("1.63178")
    assert ExchangeCredential.objects.get(exchange__slug="kraken").last_nonce > 0
