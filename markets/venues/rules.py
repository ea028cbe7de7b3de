"""Each venue's trading rules: fetched from its public reference, read by its folder's
`rules.py`, and set on the listings that changed (each saved with a `listing_synced` signal)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.error import URLError

from django.db import transaction

from markets.connection import http_get
from markets.models import Exchange, Listing, listing_synced
from markets.rules import RulesUnreadable, TradingRule
from markets.venues.binance import rules as binance
from markets.venues.coinbase import rules as coinbase
from markets.venues.kraken import rules as kraken
from markets.venues.kucoin import rules as kucoin
from markets.venues.okx import rules as okx

Reader = Callable[[bytes | str], dict[str, TradingRule]]
# slug: (the reference's path under the venue's REST URL, its reader).
READERS: dict[str, tuple[str, Reader]] = {
    "binance": (binance.PATH, binance.trading_rules),
    "coinbase": (coinbase.PATH, coinbase.trading_rules),
    "kraken": (kraken.PATH, kraken.trading_rules),
    "kucoin": (kucoin.PATH, kucoin.trading_rules),
    "okx": (okx.PATH, okx.trading_rules),
}
FETCH_TIMEOUT_S = 15.0


class VenueUnavailable(Exception):
    """The venue's reference could not be fetched or read: its listings are left as they are."""


@dataclass(slots=True)
class SyncReport:
    """What one venue's sync did: a line per listing changed or not in the answer."""

    venue: str
    changed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{self.venue}: {len(self.changed)} changed, {self.unchanged} unchanged, "
            f"{len(self.unknown)} not in the venue's answer"
        )


def reference_rules(exchange: Exchange, body: bytes | str | None = None) -> dict[str, TradingRule]:
    """The venue's rules, from `body` (a saved answer) or fetched at its REST URL."""
    if exchange.slug not in READERS:
        raise VenueUnavailable(f"{exchange.slug}: no reader of its trading rules")
    path, reader = READERS[exchange.slug]
    if body is None:
        base = exchange.effective_rest_url()
        if not base:
            raise VenueUnavailable(f"{exchange.slug}: no REST URL to fetch its trading rules")
        try:
            body = http_get(base.rstrip("/") + path, FETCH_TIMEOUT_S)
        except (URLError, OSError, ValueError) as exc:
            raise VenueUnavailable(f"{exchange.slug}: {base}{path} unreachable: {exc}") from exc
    try:
        return reader(body)
    except RulesUnreadable as exc:
        raise VenueUnavailable(f"{exchange.slug}: unreadable answer: {exc}") from exc


def apply_rules(
    exchange: Exchange,
    rules: dict[str, TradingRule],
    *,
    read_at: datetime | None = None,
    user=None,
    request=None,
) -> SyncReport:
    """Set each of `exchange`'s listings to its rule in `rules`; save only those that changed.

    `read_at` is when `rules` came from the venue itself (not a saved answer): it is stamped on
    the exchange as `rules_synced_at`, which the live readiness check reads."""
    report = SyncReport(venue=exchange.slug)
    for listing in exchange.listings.select_related("market", "exchange"):
        rule = rules.get(listing.venue_symbol)
        if rule is None:
            report.unknown.append(f"{exchange.slug} {listing.venue_symbol}: not in the answer")
            continue
        before, after = listing.take_rule(rule)
        if not after:
            report.unchanged += 1
            continue
        with transaction.atomic():
            listing.save(update_fields=list(after))
            listing_synced.send(
                sender=Listing,
                listing=listing,
                before=before,
                after=after,
                user=user,
                request=request,
            )
        changes = ", ".join(f"{name} {before[name]} -> {after[name]}" for name in after)
        report.changed.append(f"{exchange.slug} {listing.venue_symbol}: {changes}")
    if read_at is not None:
        Exchange.objects.filter(pk=exchange.pk).update(rules_synced_at=read_at)
        exchange.rules_synced_at = read_at
    return report
