"""What a live account holds at its venue beside what its ledger says: the comparison, pure, and
the latest one of each account."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from markets.models import Exchange
from portfolio.models import Account, Mode, Reconciliation

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Drift:
    """One asset: what the venue holds, what the ledger says, and the difference."""

    asset: str
    venue: Decimal
    ledger: Decimal

    @property
    def drift(self) -> Decimal:
        return self.venue - self.ledger

    def line(self) -> dict[str, str]:
        return {"asset": self.asset, "venue": f"{self.venue:f}", "ledger": f"{self.ledger:f}"}


def compare(
    venue: Mapping[str, Decimal],
    ledger: Mapping[str, Decimal],
    booked_as: Mapping[str, str] | None = None,
) -> list[Drift]:
    """Every asset either side holds, by asset. `booked_as` names venue assets the ledger books
    under another name (USDT booked as USD where the desk takes them as one): their amounts count
    towards that asset."""
    held: dict[str, Decimal] = {}
    for asset, amount in venue.items():
        name = (booked_as or {}).get(asset, asset)
        held[name] = held.get(name, ZERO) + amount
    assets = sorted({a for a, v in held.items() if v} | {a for a, v in ledger.items() if v})
    return [Drift(a, held.get(a, ZERO), ledger.get(a, ZERO)) for a in assets]


def booked_as(exchange: Exchange) -> dict[str, str]:
    """The venue's assets the ledger books under another name: the quote currency of a listing
    the desk takes as its market's (Binance's USDT in BTC-USD is booked as USD)."""
    listings = exchange.listings.select_related("market")
    return {
        listing.quote_currency: listing.market.quote
        for listing in listings
        if listing.foreign_quote and listing.quote_interchangeable
    }


def drifts_of(reconciliation: Reconciliation) -> list[Drift]:
    return [
        Drift(line["asset"], Decimal(line["venue"]), Decimal(line["ledger"]))
        for line in reconciliation.lines
    ]


def latest(account: Account) -> Reconciliation | None:
    return account.reconciliations.order_by("-at").first()


Tolerance = Callable[[str], Decimal]


def beyond(drifts: list[Drift], tolerance: Tolerance) -> list[Drift]:
    """The drifts larger than their asset's tolerance."""
    return [d for d in drifts if abs(d.drift) > tolerance(d.asset)]


def drift_words(venue: str, drift: Drift) -> str:
    """'kraken USD: venue 10,012.4, ledger 10,000, drift +12.4': as the venue and the ledger
    hold them, without the trailing zeros of the columns."""
    venue_amount, ledger, moved = (v.normalize() for v in (drift.venue, drift.ledger, drift.drift))
    return f"{venue} {drift.asset}: venue {venue_amount:,f}, ledger {ledger:,f}, drift {moved:+,f}"


def unreconciled(
    exchanges: Iterable[Exchange], *, within: timedelta, tolerance: Tolerance
) -> list[str]:
    """Why live trading on `exchanges` is not known to match the venues, one line per venue
    (none: every live account there was reconciled within `within`, its venue answered, and
    nothing drifted beyond `tolerance`)."""
    reasons = []
    now = timezone.now()
    for exchange in exchanges:
        account = Account.objects.filter(exchange=exchange, mode=Mode.LIVE).first()
        last = latest(account) if account is not None else None
        if account is None:
            reasons.append(f"{exchange.slug}: no live account")
        elif last is None:
            reasons.append(f"{exchange.slug}: never reconciled")
        elif last.error:
            reasons.append(f"{exchange.slug}: last reconciliation failed: {last.error}")
        elif now - last.at > within:
            age, limit = (now - last.at).total_seconds(), within.total_seconds()
            reasons.append(
                f"{exchange.slug}: last reconciled {age:.0f} s ago, more than {limit:.0f} s"
            )
        else:
            reasons += [drift_words(exchange.slug, d) for d in beyond(drifts_of(last), tolerance)]
    return reasons
