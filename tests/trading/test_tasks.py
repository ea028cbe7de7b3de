"""The execution tasks: refusals, idempotent delivery, enqueueing on commit, and a real Celery
worker when Redis is set."""

import os
import time
import uuid
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import transaction

from arbsite import celery_app
from portfolio.models import LedgerEntry
from tests.factories import paper_desk, publish_test_book
from trading.models import Order, Trade
from trading.tasks import QUEUE_DOWN, execute_opportunity, request_execution

D = Decimal
SELL_BIDS = [(D("102.5"), D("0.3")), (D(102), D(2))]


@pytest.fixture(autouse=True)
def forget_paper_orders(db):
    yield
    for cid in Order.objects.values_list("client_order_id", flat=True):
        caches["books"].delete(f"paper-order:{cid}")


def books():
    publish_test_book(
        "buyv", "BTC-USD", bids=[(D(99), D(1))], asks=[(D("99.5"), D("0.4")), (D(100), D(1))]
    )
    publish_test_book("sellv", "BTC-USD", bids=SELL_BIDS, asks=[(D(103), D(1))])


@pytest.mark.django_db
def test_a_refused_opportunity_counts_the_reason_and_records_no_trade():
    opportunity = paper_desk()  # no books published: too old to trust

    assert execute_opportunity(opportunity.pk) is None

    opportunity.refresh_from_db()
    assert opportunity.refusals
    assert not Trade.objects.exists()


@pytest.mark.django_db
def test_a_passed_deadline_is_a_refusal():
    opportunity = paper_desk()
    books()

    assert execute_opportunity(opportunity.pk, deadline_ts=time.time() - 1) is None

    opportunity.refresh_from_db()
    assert opportunity.refusals == {"execution deadline passed": 1}


@pytest.mark.django_db
def test_a_second_delivery_finds_the_trade_and_places_nothing_again():
    opportunity = paper_desk()
    books()
    first = execute_opportunity(opportunity.pk)
    entries = LedgerEntry.objects.count()

    second = execute_opportunity(opportunity.pk)

    assert second == first
    assert Order.objects.count() == 2
    assert LedgerEntry.objects.count() == entries
    assert Trade.objects.get().state == Trade.State.CLOSED


@pytest.mark.django_db(transaction=True)
def test_a_paper_trade_completes_end_to_end_through_celery():
    """On a real worker and Redis broker when REDIS_URL is set (CI); eagerly otherwise."""
    opportunity = paper_desk()
    books()
    if os.environ.get("REDIS_URL"):
        from celery.contrib.testing.worker import start_worker

        queue = f"test-{uuid.uuid4().hex}"
        with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue]):
            result = execute_opportunity.apply_async((opportunity.pk,), queue=queue)
            trade_id = result.get(timeout=20) if celery_app.conf.result_backend else None
            deadline = time.monotonic() + 20
            while (
                time.monotonic() < deadline
                and not Trade.objects.filter(state=Trade.State.CLOSED).exists()
            ):
                time.sleep(0.1)
    else:
        trade_id = execute_opportunity.delay(opportunity.pk).get()

    trade = Trade.objects.get()
    assert trade_id in (None, trade.pk)
    assert (trade.state, trade.realised_net_profit) == (Trade.State.CLOSED, D("2.0459"))
    assert Order.objects.filter(state=Order.State.FILLED).count() == 2


@pytest.mark.django_db(transaction=True)
def test_request_execution_enqueues_the_task_only_once_the_transaction_commits(monkeypatch):
    opportunity = paper_desk()
    sent = []
    monkeypatch.setattr(
        execute_opportunity, "apply_async", lambda args, kwargs: sent.append((args, kwargs))
    )

    with transaction.atomic():
        request_execution(opportunity)
        assert sent == []

    [(args, kwargs)] = sent
    assert args == (opportunity.pk,)
    assert (kwargs["mode"], kwargs["user_id"]) == ("paper", None)
    assert kwargs["deadline_ts"] > time.time()


@pytest.mark.django_db(transaction=True)
def test_an_execution_the_broker_cannot_take_is_counted_as_refused_not_lost(dead_broker):
    opportunity = paper_desk()

    with transaction.atomic():  # as the engine's writer enqueues
        request_execution(opportunity)

    opportunity.refresh_from_db()
    assert opportunity.refusals == {QUEUE_DOWN: 1}
    assert not Trade.objects.exists()
