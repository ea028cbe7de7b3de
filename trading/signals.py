"""Signals trading sends after a commit; receivers push trades to the pages."""

from django.dispatch import Signal

# Sent with `trade_id` once a transaction that changed that trade's state commits.
trade_changed = Signal()
