"""The desk state read from trades, and the risk re-checks of the execution task and the engine."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arbsite.models import AuditEvent
from portfolio.models import Mode
from portfolio.services import open_account
from risk import checks
from risk.models import KillSwitch
from risk.selectors import load_limits
from risk.services import reset_kill_switch, throw_kill_switch
from tests.factories import OpportunityFactory, RiskProfileFactory, UserFactory, publish_test_book
from trading.execution.desk import (
    candidate_of,
    consecutive_failures,
    desk_state,
    engine_refusals,
    execution_refusals,
    record_refusals,
    trip_if,
)
from trading.models import Opportunity, Order, Trade

D = Decimal


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
        requested_size=D(1),
        expected_net_profit=D(1),
        created_at=fields.pop("created_at", now),
        state_changed_at=now,
        **fields,
    )


def test_the_desk_state_reads_pnl_trades_positions_and_imbalance(desk):
    _, opportunity = desk
    kraken, coinbase = opportunity.buy_exchange, opportunity.sell_exchange
    open_account(exchange=kraken, mode=Mode.PAPER, funding={"BTC": D(2)})
    publish_test_book("kraken", "BTC-USD", bids=[(D(99), D(1))], asks=[(D(101), D(1))])
    trade(opportunity, Trade.State.CLOSED, closed_at=timezone.now(), realised_net_profit=D(-3))
    one_legged = trade(opportunity, Trade.State.PARTIALLY_FILLED)
    for exchange, side, filled in ((kraken, "buy", D(1)), (coinbase, "sell", D("0.4"))):
        Order.objects.create(
            trade=one_legged,
            exchange=exchange,
            side=side,
            limit_price=D(100),
            amount=D(1),
            filled_amount=filled,
            client_order_id=f"t-{side}",
        )

    state = desk_state(Mode.PAPER)

    assert (state.kill_switch_on, state.realised_pnl_today, state.trades_last_minute) == (
        False,
        D(-3),
        2,
    )
    # 2 BTC on kraken at the mid of 100; the imbalance: kraken +1 BTC valued at 100 (coinbase's
    # -0.4 has no book to value it by).
    assert state.positions == {("kraken", "BTC"): D(200)}
    assert state.open_imbalance == D(100)
    assert state.consecutive_failures == 1


def test_consecutive_failures_count_the_newest_failed_or_hedged_trades_in_a_row(desk):
    _, opportunity = desk
    earlier = timezone.now() - timedelta(minutes=5)
    trade(opportunity, Trade.State.FAILED, created_at=earlier - timedelta(minutes=1))
    trade(opportunity, Trade.State.CLOSED, created_at=earlier)
    trade(opportunity, Trade.State.CLOSED, hedged_at=timezone.now())
    trade(opportunity, Trade.State.FAILED)
    trade(opportunity, Trade.State.REJECTED)  # refused before any order: neither

    assert consecutive_failures(Mode.PAPER) == 2
    assert consecutive_failures(Mode.PAPER, since=timezone.now()) == 0


def test_a_candidate_has_no_book_age_for_a_venue_without_a_fresh_book(desk):
    from django.core.cache import caches

    _, opportunity = desk
    caches["books"].delete("book:coinbase:BTC-USD")

    candidate = candidate_of(opportunity)

    assert (candidate.market, candidate.buy_venue, candidate.sell_venue) == (
        "BTC-USD",
        "kraken",
        "coinbase",
    )
    assert candidate.buy_book_age_ms is not None and candidate.sell_book_age_ms is None
    assert candidate.notional == opportunity.size * opportunity.buy_vwap


def test_a_good_opportunity_on_a_calm_desk_may_execute(desk):
    _, opportunity = desk

    assert execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_without_an_active_profile_nothing_executes(desk):
    _, opportunity = desk

    assert execution_refusals(opportunity, mode=Mode.LIVE) == ["no active live risk profile"]


def test_automatic_execution_off_refuses_only_automatic_executions(desk):
    profile, opportunity = desk
    profile.set_auto_execute(False)

    assert execution_refusals(opportunity, mode=Mode.PAPER, automatic=True) == [checks.AUTO_OFF]
    assert execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_a_missing_book_refuses_as_too_old(desk):
    from django.core.cache import caches

    _, opportunity = desk
    caches["books"].clear()

    assert execution_refusals(opportunity, mode=Mode.PAPER) == [checks.BOOK_TOO_OLD]


def test_a_thrown_kill_switch_stops_an_execution_already_queued(
    desk, django_capture_on_commit_callbacks
):
    _, opportunity = desk
    with django_capture_on_commit_callbacks(execute=True):
        throw_kill_switch(reason="venue incident", user=UserFactory())

    assert execution_refusals(opportunity, mode=Mode.PAPER) == [checks.KILL_SWITCH]


def test_record_refusals_counts_each_reason_in_one_update(desk):
    _, opportunity = desk
    record_refusals(opportunity.pk, [checks.PROFIT_BPS])

    with CaptureQueriesContext(connection) as queries:
        record_refusals(opportunity.pk, [checks.PROFIT_BPS, checks.BOOK_TOO_OLD])

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
    assert execution_refusals(opportunity, mode=Mode.PAPER) == []
    trade(opportunity, Trade.State.FAILED)

    first = execution_refusals(opportunity, mode=Mode.PAPER)
    second = execution_refusals(opportunity, mode=Mode.PAPER)
    switch = KillSwitch.current()

    assert first == [checks.CONSECUTIVE_FAILURES]
    assert second == [checks.KILL_SWITCH]
    assert (switch.is_on, switch.automatic, switch.reason) == (
        True,
        True,
        "consecutive failures limit",
    )
    assert AuditEvent.objects.filter(action="kill switch tripped").count() == 1

    reset_kill_switch(user=UserFactory())

    assert execution_refusals(opportunity, mode=Mode.PAPER) == []


def test_trip_if_trips_on_the_daily_loss_limit(desk):
    _, opportunity = desk
    trade(opportunity, Trade.State.CLOSED, closed_at=timezone.now(), realised_net_profit=-500)

    assert trip_if(mode=Mode.PAPER) == [checks.DAILY_LOSS]
    assert KillSwitch.current().is_on


def test_trip_if_trips_on_a_stale_live_feed_only(desk):
    profile, _ = desk
    live = RiskProfileFactory(name="live desk", mode=Mode.LIVE, max_book_age_ms=2000)
    live.allowed_exchanges.set(profile.allowed_exchanges.all())

    assert trip_if(mode=Mode.PAPER, feed_ages_ms={"kraken": 60_000}) == []
    assert trip_if(mode=Mode.LIVE, feed_ages_ms={"kraken": 2000}) == []
    assert not KillSwitch.current().is_on
    assert trip_if(mode=Mode.LIVE, feed_ages_ms={"kraken": 2001}) == [checks.FEED_STALE]
    assert KillSwitch.current().is_on


@pytest.mark.django_db
def test_trip_if_without_an_active_profile_does_nothing():
    assert trip_if(mode=Mode.LIVE, feed_ages_ms={"kraken": 60_000}) == []
    assert not KillSwitch.current().is_on


def test_the_engine_checks_against_limits_it_loaded(desk):
    _, opportunity = desk

    limits, state = load_limits(Mode.PAPER), desk_state(Mode.PAPER)

    assert limits.allowed_venues == {"kraken", "coinbase"}
    assert engine_refusals(candidate_of(opportunity), limits=limits, state=state) == []
    assert engine_refusals(candidate_of(opportunity), limits=None, state=state) == [
        "no active risk profile"
    ]
