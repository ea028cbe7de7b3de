"""Reads for the portfolio page: balances per venue, realised PnL, exposure at the current mid."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, When
from django.utils import timezone

from markets.bookcache import read_book
from markets.models import Market
from portfolio.models import Balance
from trading.models import Order, Trade


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


def realised_pnl(*, mode: str, since: datetime | None = None) -> dict[str, Decimal]:
    """{quote currency: realised net PnL} of the trades in `mode` closed since `since` (or ever)."""
    trades = Trade.objects.filter(mode=mode, state=Trade.State.CLOSED)
    if since is not None:
        trades = trades.filter(closed_at__gte=since)
    rows = trades.values("opportunity__market__quote").annotate(pnl=Sum("realised_net_profit"))
    return {row["opportunity__market__quote"]: row["pnl"] or Decimal(0) for row in rows}


def realised_pnl_today(*, mode: str) -> dict[str, Decimal]:
    """Realised PnL of trades closed since midnight UTC today, per quote currency."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return realised_pnl(mode=mode, since=midnight)


def open_imbalances(*, mode: str) -> dict[tuple[str, str], Decimal]:
    """{(venue, base asset): signed base amount} of unclosed trades whose legs do not match."""
    signed = Case(
        When(side=Order.Side.BUY, then=F("filled_amount")),
        default=-F("filled_amount"),
        output_field=DecimalField(max_digits=28, decimal_places=12),
    )
    open_trades = Trade.objects.filter(mode=mode).exclude(
        state__in=[Trade.State.CLOSED, Trade.State.REJECTED, Trade.State.FAILED]
    )
    per_venue = (
        Order.objects.filter(trade__in=open_trades)
        .values("trade", "exchange__slug", "trade__opportunity__market__base")
        .annotate(net=Sum(signed))
    )
    per_trade: dict[int, Decimal] = defaultdict(Decimal)
    rows = list(per_venue)
    for row in rows:
        per_trade[row["trade"]] += row["net"]
    result: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        if per_trade[row["trade"]] != 0:
            key = (row["exchange__slug"], row["trade__opportunity__market__base"])
            result[key] += row["net"]
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


def exposure(*, mode: str) -> list[ExposureRow]:
    """Every (venue, asset) held or imbalanced in `mode`, valued at the current mid."""
    markets = list(Market.objects.all())
    balances = balances_by_venue(mode=mode)
    imbalances = open_imbalances(mode=mode)
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
