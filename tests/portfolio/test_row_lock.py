"""Two processes posting to one balance serialise on its row lock: the second waits, then lands.

The second is a real `manage.py shell` on the tests' database (the embedded server by default),
started while this process holds the lock in an open transaction; PostgreSQL reports it as
blocked by this process's backend before this process commits.
"""

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction

from portfolio.models import Balance, LedgerEntry
from portfolio.services import Posting, deposit, post_entries
from tests.databases import database_url
from tests.factories import AccountFactory

ROOT = Path(__file__).resolve().parents[2]
FILL = LedgerEntry.Kind.FILL
SECOND_POSTING = """
from decimal import Decimal
from portfolio.models import Account, LedgerEntry
from portfolio.services import Posting, post_entries
account = Account.objects.get(pk={pk})
post_entries(account=account, postings=[Posting("USD", Decimal("-30"), LedgerEntry.Kind.FILL)])
print("posted")
"""


def waiting_on_me() -> list[str]:
    """The queries of other backends that wait for a lock this connection holds."""
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is read once and kept, unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return [row[0] for row in cursor.fetchall()]


def wait_until_blocked(other: subprocess.Popen) -> list[str]:
    deadline = time.monotonic() + 60  # a bound on a slow start, not a measurement
    while time.monotonic() < deadline and other.poll() is None:
        if queries := waiting_on_me():
            return queries
        time.sleep(0.05)
    return []


@pytest.mark.django_db(transaction=True)
def test_a_second_process_waits_for_the_balance_row_lock_then_posts_on_the_new_amount():
    account = AccountFactory()
    deposit(account=account, asset="USD", amount=Decimal(100))
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1"}
    env.pop("REDIS_URL", None)

    with transaction.atomic():
        post_entries(account=account, postings=[Posting("USD", Decimal(-50), FILL)])
        other = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                SECOND_POSTING.format(pk=account.pk),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        blocked = wait_until_blocked(other)
        still_waiting = other.poll() is None
    out, err = other.communicate(timeout=60)

    assert still_waiting, err
    assert any("FOR UPDATE" in query and "portfolio_balance" in query for query in blocked), blocked
    assert (other.returncode, out.strip()) == (0, "posted"), err
    balance = Balance.objects.get(account=account, asset="USD")
    entries = LedgerEntry.objects.filter(account=account, asset="USD")
    # A lost update (the second reading 100 before the first committed) would leave 70.
    assert balance.amount == Decimal(20) == sum(entries.values_list("amount", flat=True))
    assert entries.count() == 3
