"""Pre-trade checks: each limit refuses exactly past its edge, and only there."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk import checks
from risk.checks import Candidate, DeskState, Limits

LIMITS = Limits(
    mode="paper",
    auto_execute=True,
    min_profit_bps=Decimal(5),
    min_profit_quote=Decimal("0.5"),
    max_notional=Decimal(1000),
    max_position=Decimal(5000),
    max_daily_loss=Decimal(500),
    max_trades_per_minute=10,
    max_book_age_ms=2000,
    max_open_imbalance=Decimal(2000),
    max_consecutive_failures=3,
    allowed_venues=frozenset({"kraken", "coinbase"}),
    allowed_markets=frozenset({"BTC-USD"}),
)
CANDIDATE = Candidate(
    market="BTC-USD",
    buy_venue="kraken",
    sell_venue="coinbase",
    size=Decimal("0.01"),
    buy_vwap=Decimal(50_000),
    sell_vwap=Decimal(50_100),
    net_profit=Decimal(1),
    net_bps=Decimal(10),
    notional=Decimal(500),
    buy_book_age_ms=100.0,
    sell_book_age_ms=100.0,
)
CALM = DeskState()
money = st.decimals(min_value=0, max_value=10**9, places=4)


def refused(candidate=CANDIDATE, limits=LIMITS, state=CALM, automatic=True) -> list[str]:
    return checks.refusals(candidate, limits, state, automatic=automatic)


def test_a_good_opportunity_on_a_calm_desk_is_allowed():
    assert refused() == []


def test_kill_switch_refuses_first():
    assert refused(state=DeskState(kill_switch_on=True)) == [checks.KILL_SWITCH]


def test_automatic_execution_off_refuses_only_automatic_trades():
    limits = replace(LIMITS, auto_execute=False)

    assert refused(limits=limits, automatic=True) == [checks.AUTO_OFF]
    assert refused(limits=limits, automatic=False) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"market": "ETH-USD"}, checks.MARKET_NOT_ALLOWED),
        ({"buy_venue": "binance"}, checks.VENUE_NOT_ALLOWED),
        ({"sell_venue": "binance"}, checks.VENUE_NOT_ALLOWED),
        ({"buy_book_age_ms": None}, checks.BOOK_TOO_OLD),
    ],
)
def test_disallowed_or_unknown_inputs_are_refused(change, reason):
    assert refused(candidate=replace(CANDIDATE, **change)) == [reason]


@given(limit=money, excess=st.decimals(min_value="0.0001", max_value=10**6, places=4))
def test_net_bps_refused_only_below_the_minimum(limit, excess):
    limits = replace(LIMITS, min_profit_bps=limit, min_profit_quote=Decimal(0))

    assert refused(replace(CANDIDATE, net_bps=limit), limits) == []
    assert refused(replace(CANDIDATE, net_bps=limit - excess), limits) == [checks.PROFIT_BPS]


@given(limit=money, excess=st.decimals(min_value="0.0001", max_value=10**6, places=4))
def test_net_profit_refused_only_below_the_quote_minimum(limit, excess):
    limits = replace(LIMITS, min_profit_quote=limit)

    assert refused(replace(CANDIDATE, net_profit=limit), limits) == []
    assert refused(replace(CANDIDATE, net_profit=limit - excess), limits) == [checks.PROFIT_QUOTE]


@given(limit=money, excess=st.decimals(min_value="0.0001", max_value=10**6, places=4))
def test_notional_refused_only_above_the_maximum(limit, excess):
    limits = replace(LIMITS, max_notional=limit, max_position=Decimal(10**12))

    assert refused(replace(CANDIDATE, notional=limit), limits) == []
    assert refused(replace(CANDIDATE, notional=limit + excess), limits) == [checks.NOTIONAL]


@given(limit=st.integers(0, 10**6), side=st.sampled_from(["buy_book_age_ms", "sell_book_age_ms"]))
def test_book_age_refused_only_above_the_maximum(limit, side):
    limits = replace(LIMITS, max_book_age_ms=limit)
    fresh = replace(CANDIDATE, buy_book_age_ms=0.0, sell_book_age_ms=0.0)

    assert refused(replace(fresh, **{side: float(limit)}), limits) == []
    assert refused(replace(fresh, **{side: limit + 0.001}), limits) == [checks.BOOK_TOO_OLD]


@given(limit=st.decimals(min_value="0.0001", max_value=10**9, places=4))
def test_daily_loss_refused_once_the_loss_reaches_the_limit(limit):
    limits = replace(LIMITS, max_daily_loss=limit)
    just_under = DeskState(realised_pnl_today=-limit + Decimal("0.0001"))

    assert refused(limits=limits, state=just_under) == []
    assert refused(limits=limits, state=DeskState(realised_pnl_today=-limit)) == [checks.DAILY_LOSS]


def test_a_zero_daily_loss_limit_stops_at_the_first_loss_not_before():
    limits = replace(LIMITS, max_daily_loss=Decimal(0))

    assert refused(limits=limits, state=DeskState(realised_pnl_today=Decimal(0))) == []
    assert refused(limits=limits, state=DeskState(realised_pnl_today=Decimal("-0.01"))) == [
        checks.DAILY_LOSS
    ]


@given(limit=st.integers(1, 1000))
def test_trade_rate_refused_once_the_minute_holds_the_maximum(limit):
    limits = replace(LIMITS, max_trades_per_minute=limit)

    assert refused(limits=limits, state=DeskState(trades_last_minute=limit - 1)) == []
    assert refused(limits=limits, state=DeskState(trades_last_minute=limit)) == [checks.TRADE_RATE]


@given(limit=st.decimals(min_value="0.0001", max_value=10**9, places=4))
def test_open_imbalance_refused_once_it_reaches_the_limit(limit):
    limits = replace(LIMITS, max_open_imbalance=limit)
    under = DeskState(open_imbalance=limit - Decimal("0.0001"))

    assert refused(limits=limits, state=under) == []
    assert refused(limits=limits, state=DeskState(open_imbalance=limit)) == [checks.IMBALANCE]


@given(limit=st.integers(1, 100))
def test_consecutive_failures_refused_once_they_reach_the_limit(limit):
    limits = replace(LIMITS, max_consecutive_failures=limit)

    assert refused(limits=limits, state=DeskState(consecutive_failures=limit - 1)) == []
    assert refused(limits=limits, state=DeskState(consecutive_failures=limit)) == [
        checks.CONSECUTIVE_FAILURES
    ]


@given(held=money)
def test_buy_leg_refused_only_when_it_takes_the_position_past_the_limit(held):
    limits = replace(LIMITS, max_position=held + CANDIDATE.notional, max_notional=Decimal(10**12))
    flat_after_sell = {("coinbase", "BTC"): CANDIDATE.size * CANDIDATE.sell_vwap}
    at_edge = DeskState(positions={("kraken", "BTC"): held, **flat_after_sell})
    past = DeskState(positions={("kraken", "BTC"): held + Decimal("0.0001"), **flat_after_sell})

    assert refused(limits=limits, state=at_edge) == []
    assert refused(limits=limits, state=past) == [checks.POSITION]


def test_sell_leg_refused_when_it_takes_a_short_position_past_the_limit():
    sold = CANDIDATE.size * CANDIDATE.sell_vwap  # 501
    limits = replace(LIMITS, max_position=Decimal(1000))

    at_edge = DeskState(positions={("coinbase", "BTC"): Decimal(-499)})
    past = DeskState(positions={("coinbase", "BTC"): Decimal(-499) - Decimal("0.01")})

    assert sold == 501
    assert refused(limits=limits, state=at_edge) == []
    assert refused(limits=limits, state=past) == [checks.POSITION]


def test_a_leg_that_reduces_a_position_beyond_the_limit_is_allowed():
    state = DeskState(positions={("coinbase", "BTC"): Decimal(9000)})

    assert refused(state=state) == []


def test_every_broken_limit_is_reported_at_once():
    state = DeskState(kill_switch_on=True, trades_last_minute=10)
    candidate = replace(CANDIDATE, net_bps=Decimal(1), notional=Decimal(2000))

    assert refused(candidate=candidate, state=state) == [
        checks.KILL_SWITCH,
        checks.TRADE_RATE,
        checks.PROFIT_BPS,
        checks.NOTIONAL,
    ]


def test_trip_reasons_on_daily_loss_and_consecutive_failures():
    state = DeskState(realised_pnl_today=Decimal(-500), consecutive_failures=3)

    assert checks.trip_reasons(LIMITS, state) == [checks.DAILY_LOSS, checks.CONSECUTIVE_FAILURES]
    assert checks.trip_reasons(LIMITS, CALM) == []


def test_a_stale_feed_trips_only_a_live_profile_and_only_for_its_venues():
    ages = {"kraken": 2000.5, "binance": 99_999.0}
    live = replace(LIMITS, mode="live")

    assert checks.trip_reasons(live, CALM, feed_ages_ms=ages) == [checks.FEED_STALE]
    assert checks.trip_reasons(LIMITS, CALM, feed_ages_ms=ages) == []
    assert checks.trip_reasons(live, CALM, feed_ages_ms={"kraken": 2000.0}) == []
    assert checks.stale_venues(live, ages) == ["kraken"]


def test_a_paused_venue_refuses_only_automatic_executions_on_either_leg():
    for venue in ("kraken", "coinbase"):
        state = DeskState(paused_venues=frozenset({venue}))

        assert refused(state=state) == [checks.ACK_SLOW]
        assert refused(state=state, automatic=False) == []
    assert refused(state=DeskState(paused_venues=frozenset({"binance"}))) == []


@pytest.mark.parametrize(
    ("p99_ms", "limit_ms", "slow"),
    [(500.1, 500, True), (500.0, 500, False), (None, 500, False), (60_000.0, 0, False)],
)
def test_a_venue_is_too_slow_only_past_the_limit_and_never_with_the_limit_off(
    p99_ms, limit_ms, slow
):
    assert checks.ack_too_slow(p99_ms, limit_ms) is slow
