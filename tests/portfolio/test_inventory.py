"""Each venue's holding of an asset over time, from the ledger: the opening from the balance,
the period per bucket, against hand-computed values and a brute-force running sum."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portfolio.models import Balance, LedgerEntry
from portfolio.selectors import inventory_series
from tests.factories import AccountFactory, ExchangeFactory

pytestmark = pytest.mark.django_db
d = Decimal
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def book(account, amount: str | Decimal, at: datetime, asset: str = "BTC") -> None:
    """A ledger entry at `at` and the balance it moves, as post_entries keeps them."""
    LedgerEntry.objects.create(
        account=account, asset=asset, amount=d(amount), kind="fill", created_at=at
    )
    Balance.objects.get_or_create(account=account, asset=asset)
    Balance.objects.filter(account=account, asset=asset).update(amount=F("amount") + d(amount))


@pytest.fixture
def accounts(db):
    return {
        slug: AccountFactory(exchange=ExchangeFactory(slug=slug), mode=mode)
        for slug, mode in (("alpha", "paper"), ("beta", "paper"), ("gamma", "live"))
    }


def test_each_venues_holding_at_each_step_is_the_sum_of_its_entries_before_it(accounts):
    alpha, beta = accounts["alpha"], accounts["beta"]
    book(alpha, "5", START - 10 * HOUR)  # before the period: the opening
    book(alpha, "-1.5", START + timedelta(minutes=30))
    book(alpha, "0.25", START + HOUR)  # on a step: counts from that step's next point
    book(beta, "2", START + timedelta(minutes=150))
    book(beta, "1", START + 3 * HOUR + timedelta(seconds=1))  # after the end: not in the series
    book(accounts["gamma"], "9", START)  # live: another mode
    book(alpha, "100", START, asset="USD")  # another asset

    series = inventory_series(
        mode="paper", asset="BTC", start=START, end=START + 3 * HOUR, step=HOUR
    )

    assert series.times == [START, START + HOUR, START + 2 * HOUR, START + 3 * HOUR]
    assert series.amounts == {
        "alpha": [d(5), d("3.5"), d("3.75"), d("3.75")],
        "beta": [d(0), d(0), d(0), d(2)],
    }


def test_the_last_step_is_cut_short_at_the_periods_end(accounts):
    alpha = accounts["alpha"]
    book(alpha, "1", START + timedelta(minutes=70))
    book(alpha, "1", START + timedelta(minutes=95))  # at or after the end: left out

    series = inventory_series(
        mode="paper", asset="BTC", start=START, end=START + timedelta(minutes=95), step=HOUR
    )

    assert series.times == [START, START + HOUR, START + timedelta(minutes=95)]
    assert series.amounts == {"alpha": [d(0), d(0), d(1)]}


def test_an_asset_nobody_holds_has_no_series(accounts):
    series = inventory_series(mode="paper", asset="ETH", start=START, end=START + HOUR, step=HOUR)

    assert series.amounts == {}
    assert series.times == [START, START + HOUR]


moves = st.lists(
    st.tuples(
        st.sampled_from(["alpha", "beta", "gamma"]),
        st.decimals(min_value=-50, max_value=50, places=8),
        st.integers(min_value=-5 * 3600, max_value=8 * 3600),  # seconds from START
    ),
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=moves, step_minutes=st.sampled_from([7, 15, 60, 90]), hours=st.integers(1, 6))
def test_the_series_is_the_brute_force_running_sum_of_the_ledger(
    accounts, moves, step_minutes, hours
):
    step, end = timedelta(minutes=step_minutes), START + hours * HOUR
    with transaction.atomic():
        for account in accounts.values():
            book(account, "1000", START - 6 * HOUR)  # so no balance goes below zero
        for slug, amount, seconds in moves:
            book(accounts[slug], amount, START + timedelta(seconds=seconds))

        series = inventory_series(mode="paper", asset="BTC", start=START, end=end, step=step)

        entries = list(
            LedgerEntry.objects.filter(asset="BTC").values_list(
                "account__exchange__slug", "amount", "created_at"
            )
        )
        for slug in ("alpha", "beta"):
            expected = [
                sum((a for v, a, at in entries if v == slug and at < time), d(0))
                for time in series.times
            ]
            assert series.amounts[slug] == expected
        assert "gamma" not in series.amounts
        assert series.times[0] == START and series.times[-1] == end
        assert all(b - a <= step for a, b in zip(series.times, series.times[1:], strict=False))
        transaction.set_rollback(True)
