"""The ledger stays exact through automatic paper trading: what `make run` does, on PostgreSQL.

The engine trades the seeded demo desk on the simulated venues until a run of trades has
settled; then every balance equals the sum of its ledger entries to the last decimal (summed in
the database, numeric, as the reports sum them) and none is negative.
"""

import asyncio
import socket
from decimal import Decimal
from functools import partial
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connections
from django.db.models import Count, Sum

from arbsite.celery import app as celery_app
from markets.simulator.demo import demo_key
from markets.simulator.server import VenueSimulator
from portfolio.models import Account, Balance, LedgerEntry, Reconciliation
from portfolio.services import adjust
from risk.models import KillSwitch, RiskProfile
from tests.trading.engine.test_engine import FAST, wait_for_async
from trading.engine import runner
from trading.engine.runner import EngineOptions, run_engine
from trading.models import Trade

# Enough settled trades for the ledger to have moved on every venue; a loaded CI machine took
# 100 s for 10 (its engine's books lag, and lagging books make no cross).
TRADES = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settled() -> int:
    return Trade.objects.filter(state=Trade.State.CLOSED).count()


def trade_states() -> dict:
    """What the trades did and whether the kill switch stopped them, for a failure's message."""
    states = dict(Trade.objects.values_list("state").annotate(n=Count("pk")))
    reasons = list(
        Trade.objects.exclude(state=Trade.State.CLOSED).values_list("failure_reason", flat=True)[:5]
    )
    switch = KillSwitch.current()
    return {"states": states, "reasons": reasons, "kill_switch": (switch.is_on, switch.reason)}


def balances_and_ledger_sums() -> list[tuple[Balance, Decimal | None]]:
    sums = {
        (row["account_id"], row["asset"]): row["total"]
        for row in LedgerEntry.objects.values("account_id", "asset").annotate(total=Sum("amount"))
    }
    rows = list(Balance.objects.order_by("pk"))
    assert {(b.account_id, b.asset) for b in rows} == set(sums)  # no entry without a balance
    return [(b, sums[(b.account_id, b.asset)]) for b in rows]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("debug_desk")
async def test_automatic_paper_trades_leave_every_balance_equal_to_its_ledger_exactly(
    monkeypatch, settings
):
    # The simulated venues dislocate every half second instead of every few seconds, and the
    # executions run here, as on the embedded default, even where a broker is configured (CI).
    monkeypatch.setattr(runner, "VenueSimulator", partial(VenueSimulator, timing=FAST, seed=5))
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    # The pages' pushes stay in this process: a Redis layer another test's loop opened cannot
    # carry them (the ledger is what is tested here).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    await sync_to_async(call_command)("seed_demo", stdout=StringIO())
    # Hedged trades are wanted here (their entries are part of the ledger), so three in a row on
    # a loaded machine must not throw the kill switch before enough trades have settled.
    await sync_to_async(RiskProfile.objects.filter(mode="paper").update)(
        max_consecutive_failures=1000
    )
    stop = asyncio.Event()
    options = EngineOptions(simulate=True, sim_port=free_port())
    engine = asyncio.create_task(run_engine(options, stop))

    async def enough_trades() -> bool:
        return await sync_to_async(settled)() >= TRADES

    try:
        assert await wait_for_async(enough_trades, 240), await sync_to_async(trade_states)()
    finally:
        stop.set()
        await asyncio.wait_for(engine, 30)
        await sync_to_async(connections.close_all)()  # the engine's thread keeps its connection

    pairs = await sync_to_async(balances_and_ledger_sums)()
    assert len(pairs) > 2
    for balance, ledger_sum in pairs:
        assert balance.amount == ledger_sum, (balance.account_id, balance.asset)
        assert balance.amount >= 0, (balance.account_id, balance.asset)
    # The fills' amounts carry more digits than a double holds (15), which SQLite rounded away.
    assert max(len(b.amount.as_tuple().digits) for b, _ in pairs) > 15


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("debug_desk")
async def test_the_simulated_venues_restart_holding_what_the_live_ledger_says(
    monkeypatch, settings
):
    # A run of the demo traded live, then stopped: the next one's simulated venues must hold
    # what the ledger says, or the first reconciliation would trip the kill switch.
    started = []

    def simulator(*args, **kwargs):
        started.append(VenueSimulator(*args, timing=FAST, seed=5, **kwargs))
        return started[-1]

    monkeypatch.setattr(runner, "VenueSimulator", simulator)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    await sync_to_async(call_command)("seed_demo", stdout=StringIO())
    binance = await sync_to_async(Account.objects.get)(exchange__slug="binance", mode="live")
    await sync_to_async(adjust)(
        account=binance, asset="USD", amount=Decimal("-12.5"), reason="an earlier run's trade"
    )
    stop = asyncio.Event()
    options = EngineOptions(simulate=True, sim_port=free_port())
    engine = asyncio.create_task(run_engine(options, stop))

    async def reconciled() -> bool:  # at start-up, each live account once
        return await sync_to_async(Reconciliation.objects.count)() >= 4

    try:
        assert await wait_for_async(reconciled, 60)
    finally:
        stop.set()
        await asyncio.wait_for(engine, 30)
        await sync_to_async(connections.close_all)()

    held = started[0].venues["binance"].holdings(demo_key("binance")[0])
    assert held["USDT"] == Decimal("99987.5")  # booked as USD in the ledger
    assert not await sync_to_async(lambda: KillSwitch.current().is_on)()
