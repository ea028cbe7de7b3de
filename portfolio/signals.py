"""Signals the portfolio sends after a commit; receivers push balances to the pages."""

from django.dispatch import Signal

# Sent with `account_id` once a transaction that changed that account's balances commits.
balance_changed = Signal()
