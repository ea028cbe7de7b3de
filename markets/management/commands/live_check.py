"""`manage.py live_check`: is each live venue ready to trade? One line per check; non-zero exit
status if any fails."""

from django.core.management.base import BaseCommand, CommandError

from markets.venues.readiness import FAIL, live_exchanges, readiness


class Command(BaseCommand):
    help = (
        "Check each venue the desk holds a key for (or the one named): the key decrypts and "
        "authenticates, may trade and may not withdraw, the clocks agree, the balances answer, "
        "the fees and trading rules are fresh. Exits non-zero if a check fails."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--exchange", help="Only this venue (its slug).")

    def handle(self, *args, exchange: str | None, **options) -> None:
        venues = live_exchanges(exchange)
        if not venues:
            raise CommandError(
                f"No venue {exchange!r}." if exchange else "No venue has an API credential."
            )
        failed = 0
        for venue in venues:
            for check in readiness(venue):
                self.stdout.write(str(check))
                failed += check.status == FAIL
        if failed:
            raise CommandError(f"{failed} check{'s' if failed > 1 else ''} failed.")
