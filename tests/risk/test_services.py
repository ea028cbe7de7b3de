"""The database side of risk: the execution re-check, refusal counters and the kill switch."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arbsite.models import AuditEvent
from portfolio.models import Mode
from risk import checks, services
from risk.models import KillSwitch
from tests.factories import OpportunityFactory, RiskProfileFactory, UserFactory
from trading.models import Opportunity, Trade


def trade(opportunity, state: str, **fields) -> Trade:
    now = timezone.now()
    return Trade.objects.create(
        opportunity=OpportunityFactory(
            market=opportunity.market,
            buy_exchange=opportunity.buy_exchange,
            sell_exchange=opportunity.sell_exchange,
        ),
        mode=Mode.PAPER,
        state=state,
        requested_size=Decimal(1),
        expected_net_profit=Decimal(1),
        created_at=fields.pop("created_at", now),
        state_changed_at=now,
        **fields,
    )


def test_a_good_opportunity_on_a_calm_desk_may_execute(desk):
    _, opportunity = desk

    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_without_an_active_profile_nothing_executes(desk):
    _, opportunity = desk

    assert services.execution_refusals(opportunity, mode=Mode.LIVE) == [
        "no active live risk profile"
    ]


def test_automatic_execution_off_refuses_only_automatic_executions(desk):
    profile, opportunity = desk
    profile.set_auto_execute(False)

    assert services.execution_refusals(opportunity, mode=Mode.PAPER, automatic=True) == [
        checks.AUTO_OFF
    ]
    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_a_missing_book_refuses_as_too_old(desk):
    from django.core.cache import caches

    _, opportunity = desk
    caches["books"].clear()

    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == [checks.BOOK_TOO_OLD]


def test_a_thrown_kill_switch_stops_an_execution_already_queued(
    desk, django_capture_on_commit_callbacks
):
    _, opportunity = desk
    with django_capture_on_commit_callbacks(execute=True):
        services.throw_kill_switch(reason="venue incident", user=UserFactory())

    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == [checks.KILL_SWITCH]


def test_record_refusals_counts_each_reason_in_one_update(desk):
    _, opportunity = desk
    services.record_refusals(opportunity.pk, [checks.PROFIT_BPS])

    with CaptureQueriesContext(connection) as queries:
        services.record_refusals(opportunity.pk, [checks.PROFIT_BPS, checks.BOOK_TOO_OLD])

    assert len(queries) == 1
    assert Opportunity.objects.get(pk=opportunity.pk).refusals == {
        checks.PROFIT_BPS: 2,
        checks.BOOK_TOO_OLD: 1,
    }


def test_consecutive_failures_trip_the_kill_switch_once_and_a_reset_starts_afresh(desk):
    _, opportunity = desk
    trade(opportunity, Trade.State.FILLED, created_at=timezone.now() - timedelta(seconds=90))
    trade(opportunity, Trade.State.FAILED)
    trade(opportunity, Trade.State.CLOSED, hedged_at=timezone.now())
    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == []
    trade(opportunity, Trade.State.FAILED)

    first = services.execution_refusals(opportunity, mode=Mode.PAPER)
    second = services.execution_refusals(opportunity, mode=Mode.PAPER)
    switch = KillSwitch.current()

    assert first == [checks.CONSECUTIVE_FAILURES]
    assert second == [checks.KILL_SWITCH]
    assert (switch.is_on, switch.automatic, switch.reason) == (
        True,
        True,
        "consecutive failures limit",
    )
    assert AuditEvent.objects.filter(action="kill switch tripped").count() == 1

    services.reset_kill_switch(user=UserFactory())

    assert services.execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_trip_if_trips_on_the_daily_loss_limit(desk):
    _, opportunity = desk
    trade(opportunity, Trade.State.CLOSED, closed_at=timezone.now(), realised_net_profit=-500)

    assert services.trip_if(mode=Mode.PAPER) == [checks.DAILY_LOSS]
    assert KillSwitch.current().is_on


def test_trip_if_trips_on_a_stale_live_feed_only(desk):
    profile, _ = desk
    live = RiskProfileFactory(name="live desk", mode=Mode.LIVE, max_book_age_ms=2000)
    live.allowed_exchanges.set(profile.allowed_exchanges.all())

    assert services.trip_if(mode=Mode.PAPER, feed_ages_ms={"kraken": 60_000}) == []
    assert services.trip_if(mode=Mode.LIVE, feed_ages_ms={"kraken": 2000}) == []
    assert not KillSwitch.current().is_on
    assert services.trip_if(mode=Mode.LIVE, feed_ages_ms={"kraken": 2001}) == [checks.FEED_STALE]
    assert KillSwitch.current().is_on


def test_the_engine_checks_against_limits_it_loaded(desk):
    _, opportunity = desk
    from risk.selectors import candidate_of

    limits = services.load_limits(Mode.PAPER)
    state = services.load_state(Mode.PAPER)

    assert limits.allowed_venues == {"kraken", "coinbase"}
    assert services.engine_refusals(candidate_of(opportunity), limits=limits, state=state) == []
    assert services.engine_refusals(candidate_of(opportunity), limits=None, state=state) == [
        "no active risk profile"
    ]


def test_cached_kill_switch_state_changes_as_soon_as_the_switch_does(
    desk, django_capture_on_commit_callbacks
):
    user = UserFactory()
    assert services.kill_switch_on() is False

    with django_capture_on_commit_callbacks(execute=True):
        services.throw_kill_switch(reason="test", user=user)
    assert services.kill_switch_on() is True

    with django_capture_on_commit_callbacks(execute=True):
        services.reset_kill_switch(user=user)
    assert services.kill_switch_on() is False


@pytest.mark.django_db
def test_throwing_a_switch_that_is_already_on_changes_and_records_nothing():
    user = UserFactory()
    assert services.throw_kill_switch(reason="first", user=user)

    assert not services.throw_kill_switch(reason="second", user=user)
    assert KillSwitch.current().reason == "first"
    assert AuditEvent.objects.filter(action="kill switch thrown").count() == 1
