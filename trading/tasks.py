"""Celery tasks: execution (thin edges over `trading.execution`) and the reports' jobs."""

import logging
import time
from functools import partial

from celery import shared_task
from celery.signals import worker_ready
from django.contrib.auth import get_user_model
from django.db import transaction
from kombu.exceptions import OperationalError

from portfolio.models import Mode
from risk.models import RiskProfile
from trading import reconciliation
from trading.execution import desk, recovery, trades
from trading.execution.orders import default_venue
from trading.models import Opportunity, Trade
from trading.reports import exports, rollups

log = logging.getLogger(__name__)

# How long an enqueued execution stays worth doing.
EXECUTION_DEADLINE_S = 10.0
# The refusal counted on an opportunity whose execution could not be sent to the workers.
QUEUE_DOWN = "execution queue unavailable"


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=120, soft_time_limit=90)
def execute_opportunity(
    opportunity_id: int,
    deadline_ts: float | None = None,
    mode: str | None = None,
    user_id: int | None = None,
) -> int | None:
    """Take one opportunity: re-check risk, record the trade, place both legs, settle it.

    Idempotent by opportunity: a second delivery finds the trade and places nothing. Not
    retried automatically: a trade a worker dropped is finished by `recover_trades`.
    Returns the trade id, or None when refused.
    """
    opportunity = Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange").get(
        pk=opportunity_id
    )
    existing = Trade.objects.filter(opportunity=opportunity).values_list("pk", flat=True).first()
    if existing:
        return existing
    mode = mode or RiskProfile.objects.execution_mode()
    reasons = desk.execution_refusals(opportunity, mode=mode, automatic=user_id is None)
    if not reasons and deadline_ts is not None and time.time() > deadline_ts:
        reasons = ["execution deadline passed"]
    if reasons:
        desk.record_refusals(opportunity_id, reasons)
        return None
    profile = RiskProfile.objects.active(mode)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    trade = trades.open_trade(opportunity=opportunity, mode=mode, profile=profile, user=user)
    if trade is None:
        return Trade.objects.get(opportunity=opportunity).pk
    if trade.state == Trade.State.PENDING:
        trades.submit_trade(trade=trade, venue_for=default_venue, profile=profile)
    if mode == Mode.LIVE:
        # What the legs moved at both venues, against what the ledger booked.
        venues = [opportunity.buy_exchange_id, opportunity.sell_exchange_id]
        reconcile_balances.delay_on_commit(venues)
    return trade.pk


@worker_ready.connect
def _reconcile_before_trading(**kwargs) -> None:
    """A worker starting finishes the live trades a stopped one left, and compares the venues
    with the ledger, before it takes an execution."""
    reconciliation.reconcile_at_start(alone=False)


def request_execution(opportunity: Opportunity, *, user=None, mode: str | None = None) -> None:
    """Enqueue `execute_opportunity` once the caller's transaction commits (the engine's
    automatic path; see `enqueue_execution`)."""
    mode = mode or RiskProfile.objects.execution_mode()
    transaction.on_commit(partial(enqueue_execution, opportunity.pk, mode=mode, user=user))


def enqueue_execution(opportunity_id: int, *, mode: str | None = None, user=None) -> bool:
    """Send `execute_opportunity` to the workers now; False when the broker cannot be reached,
    and then the opportunity counts the refusal (QUEUE_DOWN) instead of vanishing unsaid.

    A Trader's manual execute calls this directly, to tell them at once.
    """
    try:
        execute_opportunity.apply_async(
            (opportunity_id,),
            {
                "deadline_ts": time.time() + EXECUTION_DEADLINE_S,
                "mode": mode or RiskProfile.objects.execution_mode(),
                "user_id": getattr(user, "pk", None),
            },
        )
    except OperationalError as exc:
        log.error("opportunity %s not executed: %s (%s)", opportunity_id, QUEUE_DOWN, exc)
        desk.record_refusals(opportunity_id, [QUEUE_DOWN])
        return False
    return True


@shared_task(acks_late=True, time_limit=300, soft_time_limit=240)
def recover_trades() -> list[int]:
    """Periodic: finish or fail trades a worker left behind."""
    return recovery.recover_trades()


@shared_task(time_limit=120, soft_time_limit=100)
def reconcile_balances(exchange_ids: list[int] | None = None) -> list[int]:
    """Periodic, and after each live trade closes (its two venues): compare the live accounts'
    holdings at their venues with the ledger. Returns the reconciliations made."""
    accounts = reconciliation.live_accounts()
    if exchange_ids is not None:
        accounts = [a for a in accounts if a.exchange_id in exchange_ids]
    made = [reconciliation.reconcile(a) for a in accounts]
    return [r.pk for r in made if r is not None]


# Reports: the export builder and the jobs django-celery-beat runs just after midnight UTC.


@shared_task(acks_late=True, time_limit=1800, soft_time_limit=1700)
def build_export(export_id: int) -> bool:
    """Build one requested export file; a second delivery finds it claimed and does nothing."""
    return exports.build(export_id)


@shared_task(acks_late=True, time_limit=1800, soft_time_limit=1700)
def roll_up_days() -> list[str]:
    """Daily: roll up yesterday and any day of the retention window not rolled up yet."""
    return [day.isoformat() for day in rollups.roll_up_missing()]


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540)
def daily_summary_export() -> int:
    """Daily: yesterday's summary report as an Excel file every desk role may download."""
    return exports.daily_summary().pk


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540)
def apply_retention() -> dict[str, int]:
    """Daily: delete old untaken opportunities (already rolled up) and expired exports."""
    return rollups.apply_retention()
