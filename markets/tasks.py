"""Celery tasks of the markets app: the syncs of the venues' trading rules and fee tiers."""

from celery import shared_task
from django.core.management import call_command


@shared_task(time_limit=300, soft_time_limit=240)
def sync_trading_rules() -> None:
    """Run `sync_listings` for every enabled venue (idempotent: unchanged listings stay)."""
    call_command("sync_listings")


@shared_task(time_limit=300, soft_time_limit=240)
def sync_venue_fees() -> None:
    """Run `sync_fees` for every enabled venue the desk holds a key for."""
    call_command("sync_fees")
