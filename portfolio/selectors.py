"""Portfolio reads: balances per venue, exposure at the current mid with its open imbalances,
and each venue's holding of an asset over time from the ledger."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import DateTimeField, Func, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from markets.bookcache import read_book
from markets.models import Market
from portfolio.models import Balance, LedgerEntry


@dataclass(frozen=True, slots=True)
class ExposureRow:
    """What the desk holds of `asset` on `venue`, and the part of it no trade has matched yet.

    `imbalance` is the signed base amount of trades not yet closed whose legs differ (it counts
    against exposure until the trade closes); `value` is `amount` at `mid` in `quote`, or None
    when no fresh book prices the asset there. A quote asset is valued at 1 in itself.
    """

    venue: str
    asset: str
    amount: Decimal
    imbalance: Decimal
    quote: str
    mid: Decimal | None
    value: Decimal | None


def balances_by_venue(*, mode: str) -> dict[str, dict[str, Decimal]]:
    """{venue slug: {asset: amount}} for every account in `mode` (e.g. "paper")."""
    result: dict[str, dict[str, Decimal]] = defaultdict(dict)
    rows = Balance.objects.filter(account__mode=mode).values_list(
        "account__exchange__slug", "asset", "amount"
    )
    for venue, asset, amount in rows.order_by("account__exchange__slug", "asset"):
        result[venue][asset] = amount
    return dict(result)


def _mid(venue: str, asset: str, markets: list[Market]) -> tuple[str, Decimal | None]:
    quotes = {m.quote for m in markets}
    if asset in quotes:
        return asset, Decimal(1)
    for market in markets:
        if market.base != asset:
            continue
        book = read_book(venue, market.symbol)
        if book and book.get("valid", True) and book["bids"] and book["asks"]:
            return market.quote, (book["bids"][0][0] + book["asks"][0][0]) / 2
        return market.quote, None
    return "", None


def exposure(*, mode: str, imbalances: Mapping[tuple[str, str], Decimal]) -> list[ExposureRow]:
    """Every (venue, asset) held or imbalanced in `mode`, valued at the current mid.

    `imbalances` is {(venue, asset): signed base amount} of the trades not yet closed whose
    legs differ (trading's `open_imbalances`).
    """
    markets = list(Market.objects.all())
    balances = balances_by_venue(mode=mode)
    keys = {(v, a) for v, assets in balances.items() for a in assets} | set(imbalances)
    rows = []
    for venue, asset in sorted(keys):
        amount = balances.get(venue, {}).get(asset, Decimal(0))
        quote, mid = _mid(venue, asset, markets)
        rows.append(
            ExposureRow(
                venue=venue,
                asset=asset,
                amount=amount,
                imbalance=imbalances.get((venue, asset), Decimal(0)),
                quote=quote,
                mid=mid,
                value=None if mid is None else amount * mid,
            )
        )
    return rows


class DateBin(Func):
    """PostgreSQL's date_bin(stride, source, origin): the start of the stride `source` falls in."""

    function = "date_bin"
    output_field = DateTimeField()


@dataclass(frozen=True, slots=True)
class InventorySeries:
    """What each venue held of one asset at each time of `times`: `amounts[venue][i]` is the
    sum of that account's ledger entries before `times[i]` (the last time is the period's end)."""

    asset: str
    times: list[datetime]
    amounts: dict[str, list[Decimal]]


def inventory_series(
    *, mode: str, asset: str, start: datetime, end: datetime, step: timedelta
) -> InventorySeries:
    """Each venue's holding of `asset` in `mode` from `start` to `end`, every `step`.

    Bounded to the period: the opening holding is the balance less what the ledger moved since
    `start` (a balance is the sum of its entries), the period is summed per `step` bucket.
    """
    since = (
        LedgerEntry.objects.filter(account=OuterRef("account"), asset=asset, created_at__gte=start)
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    balances = Balance.objects.filter(account__mode=mode, asset=asset).annotate(
        moved=Coalesce(Subquery(since), Decimal(0))
    )
    balances = balances.select_related("account__exchange")
    opening = {b.account.exchange.slug: b.amount - b.moved for b in balances}
    buckets = (
        LedgerEntry.objects.filter(
            account__mode=mode, asset=asset, created_at__gte=start, created_at__lt=end
        )
        .annotate(bucket=DateBin(Value(step), "created_at", Value(start)))
        .values_list("account__exchange__slug", "bucket")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    moved: dict[tuple[str, datetime], Decimal] = {(v, b): t for v, b, t in buckets}
    steps = -(-(end - start) // step)  # ceil: the last bucket may be cut short by `end`
    times = [start + i * step for i in range(steps)] + [end]
    amounts = {}
    for venue in sorted(opening.keys() | {v for v, _ in moved}):
        running = opening.get(venue, Decimal(0))
        series = [running]
        for bucket in times[:-1]:
            running += moved.get((venue, bucket), Decimal(0))
            series.append(running)
        amounts[venue] = series
    return InventorySeries(asset=asset, times=times, amounts=amounts)
