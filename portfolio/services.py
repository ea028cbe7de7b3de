"""Ledger writes: every balance change is a set of appended entries under a row lock."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from markets import notices
from portfolio.models import Account, Balance, LedgerEntry


class InsufficientBalance(Exception):
    """A posting would take a balance below zero; nothing was written."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One signed movement to append: `amount` of `asset`, of `kind` (a LedgerEntry.Kind)."""

    asset: str
    amount: Decimal
    kind: str


def post_entries(
    *,
    account: Account,
    postings: Iterable[Posting],
    trade=None,
    order=None,
    note: str = "",
) -> list[LedgerEntry]:
    """Append `postings` to `account` and move its balances, all or nothing.

    Balances are locked in asset order (so two writers never deadlock) and each must stay >= 0
    after the whole set, or InsufficientBalance is raised and nothing is written.
    """
    postings = [p for p in postings if p.amount != 0]
    if not postings:
        return []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for posting in postings:
        totals[posting.asset] += posting.amount
    now = timezone.now()
    with transaction.atomic():
        for asset in sorted(totals):
            Balance.objects.get_or_create(account=account, asset=asset)
            balance = Balance.objects.select_for_update().get(account=account, asset=asset)
            new_amount = balance.amount + totals[asset]
            if new_amount < 0:
                raise InsufficientBalance(
                    f"{account}: {asset} {balance.amount} cannot move by {totals[asset]}"
                )
            Balance.objects.filter(pk=balance.pk).update(amount=new_amount, updated_at=now)
        entries = LedgerEntry.objects.bulk_create(
            LedgerEntry(
                account=account,
                asset=p.asset,
                amount=p.amount,
                kind=p.kind,
                trade=trade,
                order=order,
                note=note,
                created_at=now,
            )
            for p in postings
        )
        notices.publish(notices.PORTFOLIO)
    return entries


def deposit(*, account: Account, asset: str, amount: Decimal, note: str = "") -> LedgerEntry:
    """Fund `account` with `amount` (> 0) of `asset`: how paper accounts get their money."""
    if amount <= 0:
        raise ValueError("A deposit must be positive.")
    posting = Posting(asset=asset, amount=amount, kind=LedgerEntry.Kind.DEPOSIT)
    return post_entries(account=account, postings=[posting], note=note)[0]


def adjust(*, account: Account, asset: str, amount: Decimal, reason: str) -> LedgerEntry:
    """Book `amount` (signed, not zero) of `asset` to `account` for `reason`: how a person
    accounts for what the venue holds and the ledger did not (a transfer, a venue's correction)."""
    if not amount:
        raise ValueError("An adjustment moves a balance: give an amount other than zero.")
    if not reason.strip():
        raise ValueError("Say why: an adjustment without a reason cannot be accounted for.")
    posting = Posting(asset=asset, amount=amount, kind=LedgerEntry.Kind.ADJUSTMENT)
    return post_entries(account=account, postings=[posting], note=reason.strip())[0]


def open_account(*, exchange, mode: str, funding: dict[str, Decimal] | None = None) -> Account:
    """Return the account for (`exchange`, `mode`), creating and funding it on first use only."""
    with transaction.atomic():
        account, created = Account.objects.get_or_create(exchange=exchange, mode=mode)
        if created:
            for asset, amount in (funding or {}).items():
                deposit(account=account, asset=asset, amount=amount, note="opening deposit")
    return account
