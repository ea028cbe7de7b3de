"""The report's pure figures: folding parts into totals, rates, averages, the capture ratio."""

from collections import Counter
from copy import deepcopy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from markets.money import MONEY_PLACES
from trading.reports.figures import (
    Filters,
    OpportunityFigures,
    Period,
    Report,
    TradeFigures,
    fold_report,
)

D = Decimal
DAY = date(2026, 3, 1)

amounts = st.decimals(min_value=-(10**6), max_value=10**6, places=12)
optional_amounts = st.none() | amounts


@st.composite
def trade_figures(draw) -> TradeFigures:
    closed = draw(st.integers(0, 1_000))
    one_legged = draw(st.integers(0, closed))
    return TradeFigures(
        closed=closed,
        failed=draw(st.integers(0, 1_000)),
        wins=draw(st.integers(0, closed)),
        volume=draw(st.decimals(min_value=0, max_value=10**6, places=12)),
        fees=draw(st.decimals(min_value=0, max_value=10**3, places=12)),
        net_profit=draw(amounts),
        worst=draw(optional_amounts),
        best=draw(optional_amounts),
        one_legged=one_legged,
        one_legged_cost=draw(amounts),
    )


reasons = st.sampled_from(["max notional", "kill switch", "daily loss"])
counters = st.dictionaries(reasons, st.integers(1, 50)).map(Counter)
opportunity_figures = st.builds(
    OpportunityFigures,
    seen=st.integers(0, 1_000),
    taken=st.integers(0, 1_000),
    closed=st.integers(0, 1_000),
    duration_total=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
    peak_net_profit=amounts,
    peak_max=optional_amounts,
    refusals=counters,
    hours=st.dictionaries(st.integers(0, 23).map(str), st.integers(1, 50)).map(Counter),
)
groups = st.lists(
    st.tuples(
        st.sampled_from([DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]),
        st.sampled_from(["BTC-USD", "ETH-USD", "SOL-USD"]),
        st.sampled_from([("Buyv", "Sellv"), ("Sellv", "Buyv"), ("Buyv", "Thirdv")]),
        trade_figures(),
    ),
    max_size=12,
)


def _folded(parts) -> TradeFigures:
    total = TradeFigures()
    for part in parts:
        total.add(part)
    return total


def _report(groups=(), opportunities=None) -> Report:
    period = Period(DAY, DAY + timedelta(days=2))
    return fold_report(period, Filters(), groups, opportunities or OpportunityFigures(), 0)


@given(st.lists(trade_figures(), max_size=8))
def test_a_total_is_the_sum_of_its_parts(parts):
    total = _folded(parts)

    assert total.closed == sum(p.closed for p in parts)
    assert total.failed == sum(p.failed for p in parts)
    assert total.wins == sum(p.wins for p in parts)
    assert total.volume == sum((p.volume for p in parts), D(0))
    assert total.fees == sum((p.fees for p in parts), D(0))
    assert total.net_profit == sum((p.net_profit for p in parts), D(0))
    assert total.one_legged == sum(p.one_legged for p in parts)
    assert total.one_legged_cost == sum((p.one_legged_cost for p in parts), D(0))


@given(st.lists(trade_figures(), max_size=8))
def test_worst_and_best_are_the_extremes_of_the_parts_that_have_one(parts):
    total = _folded(parts)

    worsts = [p.worst for p in parts if p.worst is not None]
    bests = [p.best for p in parts if p.best is not None]
    assert total.worst == (min(worsts) if worsts else None)
    assert total.best == (max(bests) if bests else None)


@given(groups)
def test_the_total_equals_the_sums_by_day_by_market_and_by_pair(groups):
    report = _report(groups)

    assert report.total == _folded(f for *_, f in groups)
    for breakdown in (report.by_day, report.by_market, report.by_pair):
        assert _folded(breakdown.values()) == report.total
        assert list(breakdown) == sorted(breakdown)


@given(groups)
def test_folding_a_report_leaves_its_groups_unchanged(groups):
    before = deepcopy(groups)

    _report(groups)

    assert groups == before


@given(trade_figures())
def test_win_rate_is_a_percentage_of_the_closed_trades(figures):
    rate = figures.win_rate

    if figures.closed == 0:
        assert rate is None
    else:
        assert D(0) <= rate <= D(100)
        assert abs(rate - D(100) * figures.wins / figures.closed) <= D("0.005")


def test_win_rate_is_rounded_to_hundredths_of_a_percent():
    assert TradeFigures(closed=3, wins=2).win_rate == D("66.67")


@given(trade_figures())
def test_the_average_is_net_pnl_per_closed_trade_at_money_scale(figures):
    average = figures.average

    if figures.closed == 0:
        assert average is None
    else:
        assert average.as_tuple().exponent == -12
        assert abs(average - figures.net_profit / figures.closed) <= MONEY_PLACES / 2


@given(trade_figures())
def test_gross_profit_is_net_pnl_before_fees(figures):
    assert figures.gross_profit - figures.fees == figures.net_profit


@given(st.lists(opportunity_figures, max_size=8))
def test_opportunity_totals_are_the_sums_of_their_parts(parts):
    total = OpportunityFigures()
    for part in parts:
        total.add(part)

    assert (total.seen, total.taken, total.closed) == tuple(
        sum(getattr(p, name) for p in parts) for name in ("seen", "taken", "closed")
    )
    assert total.duration_total == sum((p.duration_total for p in parts), timedelta())
    assert total.refusals == sum((p.refusals for p in parts), Counter())
    assert total.hours == sum((p.hours for p in parts), Counter())
    assert total.refused == sum(p.refused for p in parts)
    peaks = [p.peak_max for p in parts if p.peak_max is not None]
    assert total.peak_max == (max(peaks) if peaks else None)


def test_refusals_by_count_put_the_most_frequent_reason_first():
    figures = OpportunityFigures(refusals=Counter({"kill switch": 1, "max notional": 5}))

    assert figures.refusals_by_count == [("max notional", 5), ("kill switch", 1)]
    assert figures.refused == 6


def test_the_average_duration_is_over_the_closed_opportunities_only():
    figures = OpportunityFigures(seen=7, closed=6, duration_total=timedelta(seconds=953.5))

    assert figures.average_duration == timedelta(seconds=953.5) / 6
    assert OpportunityFigures(seen=1).average_duration is None


def test_the_capture_ratio_is_realised_pnl_over_the_summed_peak_in_percent():
    groups = [(DAY, "BTC-USD", ("Buyv", "Sellv"), TradeFigures(closed=3, net_profit=D("2.6746")))]

    report = _report(groups, OpportunityFigures(peak_net_profit=D(10)))

    assert report.capture_ratio == D("26.75")


def test_there_is_no_capture_ratio_without_a_peak():
    assert _report().capture_ratio is None


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 800))
def test_a_period_is_its_whole_utc_days_both_included(first, length):
    period = Period(first, first + timedelta(days=length))

    assert period.days[0] == period.first
    assert period.days[-1] == period.last
    assert len(period.days) == length + 1
    assert period.start == datetime(first.year, first.month, first.day, tzinfo=UTC)
    assert period.end - period.start == timedelta(days=length + 1)
