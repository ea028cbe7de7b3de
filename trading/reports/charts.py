"""The report's chart series for static/js/reports.js: floats, because they are only drawn."""

from markets.money import day_start
from trading.reports.figures import DURATION_BUCKETS, Report


def chart_data(report: Report) -> dict:
    """Daily and cumulative net PnL per day of the period (a day without trades is 0), the
    opportunities by hour of day (UTC) and the spread duration histogram."""
    days = report.period.days
    daily = [float(report.by_day[d].net_profit) if d in report.by_day else 0.0 for d in days]
    cumulative, running = [], 0.0
    for value in daily:
        running += value
        cumulative.append(round(running, 8))
    hours = report.opportunities.hours
    durations = report.opportunities.durations
    return {
        "days": [int(day_start(d).timestamp()) for d in days],
        "daily_net": daily,
        "cumulative_net": cumulative,
        "hours": list(range(24)),
        "opportunities_by_hour": [hours.get(str(h), 0) for h in range(24)],
        "duration_labels": [label for label, *_ in DURATION_BUCKETS],
        "duration_counts": [durations.get(label, 0) for label, *_ in DURATION_BUCKETS],
    }
