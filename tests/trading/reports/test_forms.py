"""The report filter: preset and custom periods of UTC days, their limits, and the filters."""

from datetime import date, timedelta

import pytest

from tests.factories import ExchangeFactory, MarketFactory
from trading.reports.figures import Filters, Period
from trading.reports.forms import ReportFilter

TODAY = date(2026, 3, 15)


def _chosen(params: dict) -> tuple[Period, Filters]:
    form = ReportFilter(params)
    assert form.is_valid(), form.errors
    return form.period_and_filters(TODAY)


@pytest.mark.parametrize(("preset", "days"), [("today", 1), ("7d", 7), ("30d", 30), ("365d", 365)])
def test_a_preset_is_that_many_days_ending_today(preset, days):
    period, _ = _chosen({"period": preset})

    assert period == Period(TODAY - timedelta(days=days - 1), TODAY)
    assert len(period.days) == days


def test_no_period_means_the_last_seven_days():
    period, filters = _chosen({})

    assert period == Period(date(2026, 3, 9), TODAY)
    assert filters == Filters()


def test_a_custom_period_is_its_two_dates():
    period, _ = _chosen({"period": "custom", "since": "2025-12-30", "until": "2026-01-02"})

    assert period == Period(date(2025, 12, 30), date(2026, 1, 2))


@pytest.mark.parametrize(
    ("since", "until", "error"),
    [
        ("2026-02-01", "", "A custom period needs both dates."),
        ("2026-02-10", "2026-02-01", "The period ends before it starts."),
        ("2024-01-01", "2026-01-01", "A period is at most 731 days."),
    ],
)
def test_a_bad_custom_period_is_refused_with_its_reason(since, until, error):
    form = ReportFilter({"period": "custom", "since": since, "until": until})

    assert not form.is_valid()
    assert form.non_field_errors() == [error]


def test_the_longest_custom_period_is_731_days():
    period, _ = _chosen({"period": "custom", "since": "2024-01-01", "until": "2025-12-31"})

    assert len(period.days) == ReportFilter.MAX_DAYS


@pytest.mark.django_db
def test_market_venue_and_mode_become_the_filters():
    market, venue = MarketFactory(symbol="ETH-USD"), ExchangeFactory(slug="kraken")

    _, filters = _chosen({"market": "ETH-USD", "venue": "kraken", "mode": "live"})

    assert filters == Filters(market=market, venue=venue, mode="live")


@pytest.mark.django_db
def test_an_unknown_market_is_refused():
    assert not ReportFilter({"market": "NOPE-USD"}).is_valid()
