"""The ledger: balances move only by appended entries, equal their sums, and never go negative."""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from markets import notices
from portfolio.models import Account, Balance, LedgerEntry
from portfolio.services import InsufficientBalance, Posting, deposit, open_account, post_entries
from tests.factories import AccountFactory, ExchangeFactory

D = Decimal
FILL, FEE = LedgerEntry.Kind.FILL, LedgerEntry.Kind.FEE

amounts = st.decimals(
    min_value=D("-500"), max_value=D("500"), places=8, allow_nan=False, allow_infinity=False
)
postings = st.lists(
    st.tuples(st.sampled_from(["USD", "BTC"]), amounts, st.sampled_from([FILL, FEE])),
    min_size=1,
    max_size=3,
)


def ledger_sum(account: Account, asset: str) -> Decimal:
    rows = LedgerEntry.objects.filter(account=account, asset=asset)
    return sum(rows.values_list("amount", flat=True), D(0))


def balance(account: Account, asset: str) -> Decimal:
    row = Balance.objects.filter(account=account, asset=asset).first()
    return row.amount if row else D(0)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funding=st.decimals(min_value=0, max_value=1000, places=2), steps=st.lists(postings))
def test_random_fill_sequences_keep_balances_equal_to_ledger_sums_and_never_negative(
    funding, steps
):
    account = AccountFactory(exchange=ExchangeFactory())
    if funding:
        deposit(account=account, asset="USD", amount=funding)

    for step in steps:
        before = list(LedgerEntry.objects.filter(account=account).values_list("pk", flat=True))
        try:
            post_entries(account=account, postings=[Posting(a, amt, k) for a, amt, k in step])
        except InsufficientBalance:
            after = list(LedgerEntry.objects.filter(account=account).values_list("pk", flat=True))
            assert after == before
        for asset in ("USD", "BTC"):
            assert balance(account, asset) == ledger_sum(account, asset)
            assert balance(account, asset) >= 0


@pytest.mark.django_db
def test_overdraw_is_refused_and_leaves_nothing_written():
    account = AccountFactory()
    deposit(account=account, asset="USD", amount=D(100))
    deposit(account=account, asset="BTC", amount=D(1))

    with pytest.raises(InsufficientBalance):
        post_entries(
            account=account,
            postings=[Posting("BTC", D("0.5"), FILL), Posting("USD", D("-100.01"), FILL)],
        )

    assert LedgerEntry.objects.filter(account=account).count() == 2
    assert (balance(account, "USD"), balance(account, "BTC")) == (D(100), D(1))


@pytest.mark.django_db
def test_postings_of_one_set_are_netted_before_the_balance_check():
    account = AccountFactory()
    deposit(account=account, asset="USD", amount=D(100))

    post_entries(
        account=account, postings=[Posting("USD", D(-150), FILL), Posting("USD", D(60), FILL)]
    )

    assert balance(account, "USD") == D(10) == ledger_sum(account, "USD")


@pytest.mark.django_db
def test_deposit_must_be_positive():
    with pytest.raises(ValueError):
        deposit(account=AccountFactory(), asset="USD", amount=D(0))


@pytest.mark.django_db
def test_open_account_funds_once_and_returns_the_same_account_again():
    exchange = ExchangeFactory()

    first = open_account(exchange=exchange, mode="paper", funding={"USD": D(1000)})
    second = open_account(exchange=exchange, mode="paper", funding={"USD": D(1000)})

    assert first == second
    assert balance(first, "USD") == D(1000)
    assert LedgerEntry.objects.get(account=first).kind == LedgerEntry.Kind.DEPOSIT


@pytest.mark.django_db(transaction=True)
def test_a_balance_change_tells_the_pages_once_the_transaction_commits(heard):
    account = AccountFactory()
    portfolio = heard(notices.PORTFOLIO)

    with transaction.atomic():
        deposit(account=account, asset="USD", amount=D(5))
        before_commit = portfolio.notices(0.05)

    assert before_commit == []
    assert [n["kind"] for n in portfolio.notices()] == [notices.PORTFOLIO]


@pytest.mark.django_db(transaction=True)
def test_a_refused_posting_tells_the_pages_nothing(heard):
    account = AccountFactory()
    portfolio = heard(notices.PORTFOLIO)

    with pytest.raises(InsufficientBalance):
        post_entries(account=account, postings=[Posting("USD", D(-1), FILL)])

    assert portfolio.notices() == []
