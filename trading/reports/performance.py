"""How the desk performed over a period: the worst fall of its cumulative net PnL, what a won
trade paid against what a lost one cost, fees against gross, and return on capital per venue.

Pure: plain values in and out; `queries.performance_of` fills them from the database.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markets.money import BPS, ZERO, money

PERCENT = Decimal(100)
RATIO_PLACES = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The largest fall of cumulative net PnL from a high to a later low, and when each was.

    `peak_at` is None when the high was the start of the period (the desk fell from zero).
    """

    amount: Decimal
    peak_at: datetime | None
    trough_at: datetime


def max_drawdown(pnls: Iterable[tuple[datetime, Decimal]]) -> Drawdown | None:
    """The maximum drawdown of the running sum of `pnls` (in settlement order), None if it never
    fell below a previous high (or the start, zero). Its peak is the last time the desk stood at
    that high before the fall (as `queries.drawdown_of` reads it)."""
    running, peak, peak_at, worst = ZERO, ZERO, None, None
    for at, pnl in pnls:
        running += pnl
        if running > peak or running == peak > 0:
            peak, peak_at = running, at
        fall = peak - running
        if fall > 0 and (worst is None or fall > worst.amount):
            worst = Drawdown(money(fall), peak_at, at)
    return worst


@dataclass(frozen=True, slots=True)
class VenueReturn:
    """A venue's part of the period: the notional the desk's filled orders put to work there and
    the net PnL of the trades with a leg there (a trade counts on both its venues)."""

    venue: str
    capital: Decimal
    net_profit: Decimal

    @property
    def return_bps(self) -> Decimal | None:
        if not self.capital:
            return None
        return (self.net_profit / self.capital * BPS).quantize(RATIO_PLACES)


@dataclass(frozen=True, slots=True)
class Performance:
    """The period's closed trades as a desk judges them."""

    closed: int
    gross_won: Decimal  # the sum of the trades that made money
    gross_lost: Decimal  # the sum of those that lost it, below zero
    fees: Decimal
    drawdown: Drawdown | None
    venues: tuple[VenueReturn, ...] = ()

    @property
    def net_profit(self) -> Decimal:
        return self.gross_won + self.gross_lost

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross won over gross lost: above 1 the desk made more than it lost; None with no loss."""
        if not self.gross_lost:
            return None
        return (self.gross_won / -self.gross_lost).quantize(RATIO_PLACES)

    @property
    def expectancy(self) -> Decimal | None:
        """What one trade made on average: the net PnL over the closed trades."""
        return money(self.net_profit / self.closed) if self.closed else None

    @property
    def fee_share(self) -> Decimal | None:
        """Fees in percent of gross (PnL before fees); None unless the prices paid something."""
        gross = self.net_profit + self.fees
        return (self.fees / gross * PERCENT).quantize(RATIO_PLACES) if gross > 0 else None


@dataclass(frozen=True, slots=True)
class Holding:
    """In one quote currency: the period's starting inventory valued at the period's end prices
    (what simply holding it was worth) beside the inventory the desk ended with, at those prices.

    The desk's side includes any deposit made during the period.
    """

    quote: str
    held: Decimal
    desk: Decimal

    @property
    def difference(self) -> Decimal:
        """What trading added over holding (below zero: holding was worth more)."""
        return self.desk - self.held


def holding_values(
    start: dict[str, Decimal], end: dict[str, Decimal], prices: dict[str, tuple[str, Decimal]]
) -> tuple[list[Holding], list[str]]:
    """`start` and `end` inventories (asset -> amount) valued at `prices` (asset -> its quote and
    price there; a quote is worth one of itself): a Holding per quote, and the assets no price
    values, which are left out of both sides."""
    quotes = {quote for quote, _ in prices.values()}
    held: dict[str, Decimal] = {}
    desk: dict[str, Decimal] = {}
    unpriced = []
    for asset in sorted(start.keys() | end.keys()):
        quote, price = (asset, Decimal(1)) if asset in quotes else prices.get(asset, (None, None))
        if quote is None:
            unpriced.append(asset)
            continue
        held[quote] = held.get(quote, ZERO) + start.get(asset, ZERO) * price
        desk[quote] = desk.get(quote, ZERO) + end.get(asset, ZERO) * price
    holdings = [Holding(q, money(held[q]), money(desk[q])) for q in sorted(held)]
    return holdings, unpriced
