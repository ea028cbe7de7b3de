"""The history filters: the days a filter may name, and queries that hold for any of them."""

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import TradeFactory
from trading.history import (
    FIRST_DAY,
    LAST_DAY,
    OpportunityFilter,
    TradeFilter,
    filtered_opportunities,
    filtered_trades,
)

pytestmark = pytest.mark.django_db
OUT_OF_RANGE = "Enter a date between 2000-01-01 and 2099-12-31."


@pytest.mark.parametrize("form", [OpportunityFilter, TradeFilter])
@pytest.mark.parametrize(
    ("field", "day"), [("until", "9999-12-31"), ("since", "9999-12-31"), ("since", "1999-12-31")]
)
def test_a_day_outside_the_desks_range_is_a_form_error(form, field, day):
    bound = form({field: day})

    assert not bound.is_valid()
    assert bound.errors[field] == [OUT_OF_RANGE]


@pytest.mark.parametrize("form", [OpportunityFilter, TradeFilter])
def test_the_first_and_last_days_of_the_range_are_accepted(form):
    bound = form({"since": FIRST_DAY.isoformat(), "until": LAST_DAY.isoformat()})

    assert bound.is_valid(), bound.errors


@pytest.fixture
def today_trade(desk):
    """The desk's opportunity, opened now, and a trade of it."""
    _, opportunity = desk
    return opportunity, TradeFactory(opportunity=opportunity)


def test_the_trades_up_to_the_last_day_include_todays(today_trade):
    _, trade = today_trade

    form, trades = filtered_trades({"until": LAST_DAY.isoformat()})

    assert form.is_valid()
    assert list(trades) == [trade]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(since=st.dates(), until=st.dates())
def test_any_two_days_are_a_form_error_or_select_what_happened_between_them(
    today_trade, since, until
):
    opportunity, trade = today_trade
    data = {"since": since.isoformat(), "until": until.isoformat()}
    today = timezone.now().date()

    opportunities_form, opportunities = filtered_opportunities(data)
    trades_form, trades = filtered_trades(data)

    in_range = FIRST_DAY <= since <= LAST_DAY and FIRST_DAY <= until <= LAST_DAY
    assert opportunities_form.is_valid() == trades_form.is_valid() == in_range
    between = in_range and since <= today <= until
    assert list(opportunities) == ([opportunity] if between else [])
    assert list(trades) == ([trade] if between else [])
