"""`manage.py sync_listings`: set the listings' tick, lot, minimums and status from the venues."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from markets.models import Exchange
from markets.venues.rules import READERS, VenueUnavailable, apply_rules, reference_rules


class Command(BaseCommand):
    help = "Read each enabled venue's trading rules and update its listings (audited)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--exchange", help="Only this venue (its slug).")
        parser.add_argument(
            "--file", type=Path, help="Read this saved reference answer instead (needs --exchange)."
        )

    def handle(self, *args, exchange: str | None, file: Path | None, **options) -> None:
        if file is not None and not exchange:
            raise CommandError("--file is one venue's answer: say which with --exchange.")
        body = self._read(file) if file is not None else None
        venues = Exchange.objects.filter(enabled=True)
        venues = venues.filter(slug=exchange) if exchange else venues.filter(slug__in=READERS)
        if not venues:
            raise CommandError(f"No enabled venue {exchange or 'with trading rules'} to sync.")
        failed = 0
        for venue in venues:
            try:
                rules = reference_rules(venue, body)
                read_at = timezone.now() if body is None else None  # a saved answer may be old
                report = apply_rules(venue, rules, read_at=read_at)
            except VenueUnavailable as exc:
                failed += 1
                self.stderr.write(str(exc))
                continue
            for line in report.changed + report.unknown:
                self.stdout.write(line)
            self.stdout.write(report.summary())
        if failed == len(venues):
            raise CommandError("No venue's trading rules could be read.")

    def _read(self, file: Path) -> bytes:
        try:
            return file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from exc
