"""Risk's signals: a person or the desk itself changed whether and how the desk may trade."""

from django.dispatch import Signal

# Sent inside the change's transaction, with `action`, `user`, `request`, `obj`, `before`,
# `after` and `username`, so what a receiver writes (the audit trail) commits with the change.
desk_changed = Signal()
