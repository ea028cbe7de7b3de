"""Each venue's fee tier for the desk's account: asked of the venue with the desk's key and set
on its Exchange row, which the detector, the sizing and the reports read (saved with an
`exchange_fees_synced` signal, which the audit trail records)."""

from dataclasses import dataclass
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from markets.models import Exchange, ExchangeCredential, exchange_fees_synced
from markets.venues.live import NotTradable, live_venue
from markets.venues.orders import FeeTier, VenueError
from markets.venues.rules import VenueUnavailable

BPS_PLACES = Decimal("0.001")  # Exchange.taker_fee_bps keeps three decimals
MAX_BPS = Decimal(1000)  # a tier above 10 % is no tier any venue charges: a misread answer


@dataclass(frozen=True, slots=True)
class FeeSync:
    """What one venue's fee sync found, and whether it changed the row."""

    venue: str
    before: FeeTier
    after: FeeTier

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def summary(self) -> str:
        if not self.changed:
            after = self.after
            return f"{self.venue}: taker {after.taker_bps}, maker {after.maker_bps} bps, unchanged"
        return (
            f"{self.venue}: taker {self.before.taker_bps} -> {self.after.taker_bps} bps, "
            f"maker {self.before.maker_bps} -> {self.after.maker_bps} bps"
        )


def venue_fees(exchange: Exchange) -> FeeTier:
    """The account's tier as the venue states it, on the row's places; VenueUnavailable if the
    desk holds no key for it, it cannot trade live, or it does not answer readably."""
    if not ExchangeCredential.objects.filter(exchange=exchange).exists():
        raise VenueUnavailable(
            f"{exchange.slug}: no API credential; fee tiers are the account's, so only the "
            "venue with the desk's key can tell them"
        )
    symbols = list(exchange.listings.filter(enabled=True).values_list("venue_symbol", flat=True))
    if not symbols:
        raise VenueUnavailable(f"{exchange.slug}: no enabled listing to ask the fees of")
    try:
        tier = async_to_sync(live_venue(exchange).fetch_fees)(symbols)
    except (NotTradable, VenueError) as exc:
        raise VenueUnavailable(f"{exchange.slug}: fees unread: {exc}") from exc
    taker, maker = tier.taker_bps.quantize(BPS_PLACES), tier.maker_bps.quantize(BPS_PLACES)
    if not (0 <= taker <= MAX_BPS and 0 <= maker <= MAX_BPS):
        raise VenueUnavailable(f"{exchange.slug}: fees unread: taker {taker}, maker {maker} bps")
    return FeeTier(taker_bps=taker, maker_bps=maker)


def sync_fees(exchange: Exchange, *, user=None, request=None) -> FeeSync:
    """Set `exchange`'s fees to the venue's tier for the desk's account (audited if changed)."""
    tier = venue_fees(exchange)
    with transaction.atomic():
        row = Exchange.objects.select_for_update().get(pk=exchange.pk)
        before = FeeTier(taker_bps=row.taker_fee_bps, maker_bps=row.maker_fee_bps)
        row.taker_fee_bps, row.maker_fee_bps = tier.taker_bps, tier.maker_bps
        row.fees_synced_at = timezone.now()
        row.save(update_fields=["taker_fee_bps", "maker_fee_bps", "fees_synced_at"])
        result = FeeSync(venue=exchange.slug, before=before, after=tier)
        if result.changed:
            exchange_fees_synced.send(
                sender=Exchange, exchange=row, sync=result, user=user, request=request
            )
    exchange.taker_fee_bps, exchange.maker_fee_bps = tier.taker_bps, tier.maker_bps
    exchange.fees_synced_at = row.fees_synced_at
    return result
