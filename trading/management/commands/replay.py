"""Replay a recorded feed (run_arbitrage --record) through the engine's own path, offline."""

import json
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from markets.models import Exchange
from trading.engine.pipeline import Limits
from trading.engine.replay import Listing, VenueFacts, event_json, replay_file


def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise CommandError(f"must be a finite number >= 0: {value!r}")
    return number


def _fee(value: str) -> tuple[str, Decimal]:
    venue, sep, bps = value.partition("=")
    if not sep or not venue:
        raise CommandError(f"--taker-fee-bps takes VENUE=BPS, not {value!r}")
    return venue, _decimal(bps)


def venue_facts() -> dict[str, VenueFacts]:
    facts = {}
    for exchange in Exchange.objects.prefetch_related("listings__market"):
        facts[exchange.slug] = VenueFacts(
            taker_fee_bps=exchange.taker_fee_bps,
            exchange_id=exchange.id,
            listings={
                item.venue_symbol: Listing(item.market.symbol, item.lot_size)
                for item in exchange.listings.all()
            },
        )
    return facts


class Command(BaseCommand):
    help = "Replay a recording through the parsers, books and detector as fast as it can."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")
        parser.add_argument("--taker-fee-bps", action="append", default=[], metavar="VENUE=BPS")
        parser.add_argument("--min-profit-bps", default="0")
        parser.add_argument("--max-notional", default=None, metavar="QUOTE")
        parser.add_argument(
            "--max-book-age-ms", type=int, default=None,
            help="treat books older than this (file clock) as stale; default: no limit",
        )  # fmt: skip
        parser.add_argument("--json", action="store_true", help="one JSON line per event")

    def handle(self, *args, path: str, **options) -> None:
        limits = Limits(
            min_profit_bps=_decimal(options["min_profit_bps"]),
            max_notional=_decimal(options["max_notional"]) if options["max_notional"] else None,
            max_book_age_s=(options["max_book_age_ms"] or 0) / 1000 or float("inf"),
        )
        fees = dict(_fee(value) for value in options["taker_fee_bps"])
        as_json = options["json"]

        def emit(event) -> None:
            data = event_json(event)
            if as_json:
                self.stdout.write(json.dumps(data))
            else:
                self.stdout.write(
                    f"{data['event']:6} {data['market']} buy {data['buy_venue']} "
                    f"sell {data['sell_venue']} size {data['size']} net {data['net_profit']} "
                    f"({data['net_bps']} bps)"
                )

        try:
            summary = replay_file(path, venue_facts(), limits, fees, emit)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot replay {path}: {exc}") from exc
        self.stdout.write(json.dumps({"summary": summary}) if as_json else self.text(summary))

    def text(self, summary: dict) -> str:
        lines = [f"{key}: {summary[key]}" for key in summary if key not in ("open_at_end",)]
        lines += [f"open at end: {json.dumps(item)}" for item in summary["open_at_end"]]
        return "\n".join(lines)
