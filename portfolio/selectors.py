"""Portfolio reads: balances per venue, and exposure at the current mid with its open imbalances."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from markets.bookcache import read_book
from markets.models import Market
from portfolio.models import Balance


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
