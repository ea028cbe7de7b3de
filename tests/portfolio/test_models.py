"""Ledger rows are append-only and the database refuses a negative balance."""

from decimal import Decimal

import pytest
from django.db import IntegrityError

from portfolio.models import Balance, LedgerEntry
from portfolio.services import deposit
from tests.factories import AccountFactory


@pytest.mark.django_db
def test_a_saved_ledger_entry_cannot_be_changed_or_deleted():
    entry = deposit(account=AccountFactory(), asset="USD", amount=Decimal(10))

    entry.amount = Decimal(1_000_000)
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == Decimal(10)


@pytest.mark.django_db
def test_the_database_refuses_a_negative_balance():
    account = AccountFactory()

    with pytest.raises(IntegrityError):
        Balance.objects.create(account=account, asset="USD", amount=Decimal("-0.01"))


@pytest.mark.django_db
def test_the_database_refuses_a_second_account_for_the_same_venue_and_mode():
    account = AccountFactory()

    with pytest.raises(IntegrityError):
        type(account).objects.create(exchange=account.exchange, mode=account.mode)
