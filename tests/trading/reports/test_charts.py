"""The chart series: a value per day of the period, the running total, hours and durations."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.reports.charts import chart_data
from trading.reports.figures import (
    DURATION_BUCKETS,
    Filters,
    OpportunityFigures,
    Period,
    TradeFigures,
    fold_report,
)

DAY = date(2026, 3, 1)
PAIR = ("Buyv", "Sellv")


def _report(nets: dict[date, str], last: date, opportunities=None):
    groups = [(d, "BTC-USD", PAIR, TradeFigures(net_profit=Decimal(n))) for d, n in nets.items()]
    return fold_report(
        Period(DAY, last), Filters(), groups, opportunities or OpportunityFigures(), 0
    )


def test_a_period_without_trades_charts_zero_for_each_day():
    chart = chart_data(_report({}, DAY))

    assert chart["daily_net"] == [0.0]
    assert chart["cumulative_net"] == [0.0]


def test_a_day_without_trades_is_zero_and_the_running_total_carries_over_it():
    third = DAY + timedelta(days=2)

    chart = chart_data(_report({DAY: "1.5", third: "-0.5"}, third))

    assert chart["daily_net"] == [1.5, 0.0, -0.5]
    assert chart["cumulative_net"] == [1.5, 1.5, 1.0]


def test_days_are_drawn_at_midnight_utc():
    chart = chart_data(_report({}, DAY + timedelta(days=1)))

    assert chart["days"] == [int(datetime(2026, 3, d, tzinfo=UTC).timestamp()) for d in (1, 2)]


def test_hours_and_durations_have_a_count_for_every_bar():
    opportunities = OpportunityFigures(
        hours=Counter({"2": 2, "23": 1}), durations=Counter({"1-5 s": 4})
    )

    chart = chart_data(_report({}, DAY, opportunities))

    assert chart["hours"] == list(range(24))
    assert chart["opportunities_by_hour"][2] == 2
    assert chart["opportunities_by_hour"][23] == 1
    assert sum(chart["opportunities_by_hour"]) == 3
    assert chart["duration_labels"] == [label for label, *_ in DURATION_BUCKETS]
    assert chart["duration_counts"] == [0, 4, 0, 0, 0, 0]


@given(st.lists(st.decimals(min_value=-1000, max_value=1000, places=4), min_size=1, max_size=30))
def test_the_cumulative_series_ends_at_the_periods_net_pnl(nets):
    last = DAY + timedelta(days=len(nets) - 1)
    report = _report({DAY + timedelta(days=n): str(v) for n, v in enumerate(nets)}, last)

    chart = chart_data(report)

    assert len(chart["daily_net"]) == len(chart["cumulative_net"]) == len(nets)
    assert abs(chart["cumulative_net"][-1] - float(report.total.net_profit)) < 1e-6
