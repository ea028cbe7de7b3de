"""`manage.py sync_fees`: set each live venue's fees to the account's tier there (audited)."""

from django.core.management.base import BaseCommand, CommandError

from markets.models import Exchange
from markets.venues.fees import sync_fees
from markets.venues.rules import VenueUnavailable


class Command(BaseCommand):
    help = "Ask each enabled venue the desk holds a key for its fee tier, and set it (audited)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--exchange", help="Only this venue (its slug).")

    def handle(self, *args, exchange: str | None, **options) -> None:
        venues = Exchange.objects.filter(enabled=True)
        if exchange:
            venues = venues.filter(slug=exchange)
        else:
            venues = venues.filter(credential__isnull=False)
        if not venues:
            raise CommandError(
                f"No enabled venue {exchange or 'with an API credential'} to ask its fees."
            )
        failed = 0
        for venue in venues:
            try:
                self.stdout.write(sync_fees(venue).summary())
            except VenueUnavailable as exc:
                failed += 1
                self.stderr.write(str(exc))
        if failed == len(venues):
            raise CommandError("No venue's fees could be read.")
