"""How the desk performed over a period: the worst fall of its cumulative net PnL, what a won
trade paid against what a lost one cost, fees against gross, and return on capital per venue.

Pure: plain values in and out; `queries.performance_of` fills them from the database.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import groupby

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
    that high before the fall."""
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
class RunPoint:
    """A trade in a day's run: the running sum since the day's start once it settled, the
    highest running sum up to it and the last time the day stood there."""

    at: datetime
    id: int
    cum: Decimal
    high: Decimal
    high_at: datetime


@dataclass(frozen=True, slots=True)
class DayRun:
    """A day's closed trades as a stretch of cumulative net PnL, from zero at its start: its net,
    its high (and the last time at it), its first lowest point and its first deepest fall below
    its own high so far. Wherever the desk stood when the day began, the day's deepest fall from
    the period's high is at one of those two points (`join_days`)."""

    net: Decimal
    high: Decimal
    high_at: datetime
    low: RunPoint
    fall: RunPoint


def day_run(trades: Iterable[tuple[datetime, int, Decimal]]) -> DayRun:
    """The run of a day's closed trades, (settled at, id, net PnL) in settlement order."""
    cum, high, high_at, low, fall = ZERO, None, None, None, None
    for at, trade_id, pnl in trades:  # a rollup runs this over each trade a dozen times: lean
        cum += pnl
        if high is None or cum >= high:
            high, high_at = cum, at
        if low is None or cum < low[2]:
            low = (at, trade_id, cum, high, high_at)
        if fall is None or high - cum > fall[3] - fall[2]:
            fall = (at, trade_id, cum, high, high_at)
    if low is None:
        raise ValueError("a day's run needs a trade")
    return DayRun(cum, high, high_at, RunPoint(*low), RunPoint(*fall))


def day_runs(trades: Iterable[tuple[datetime, int, Decimal]]) -> Iterator[tuple[date, DayRun]]:
    """The run of each UTC day of `trades` (as `day_run` takes them), day by day."""
    for day, rows in groupby(trades, key=lambda row: row[0].astimezone(UTC).date()):
        yield day, day_run(rows)


def join_days(runs: Iterable[DayRun]) -> Drawdown | None:
    """The maximum drawdown of days' runs in order, exactly as `max_drawdown` gives it over
    their trades.

    Entering a day at cumulative `cum` below a high `peak`, a trade of the day that stands at
    `cum + p.cum` under the day's high so far `p.high` falls `max(peak, cum + p.high) - (cum +
    p.cum)` from the period's high: the larger of `peak - cum - p.cum`, deepest at the day's
    first lowest point, and `p.high - p.cum`, deepest at the day's first deepest fall. So one of
    those two points is the day's first deepest trade; the high it fell from is the day's own
    when the day had climbed to it (the last time there), else the period's high before."""
    cum, peak, peak_at, worst = ZERO, ZERO, None, None
    for run in runs:
        for point in sorted((run.low, run.fall), key=lambda p: (p.at, p.id)):
            high = cum + point.high
            fall = max(peak, high) - (cum + point.cum)
            if fall > 0 and (worst is None or fall > worst.amount):
                fell_from = point.high_at if high > peak or high == peak > 0 else peak_at
                worst = Drawdown(money(fall), fell_from, point.at)
        high = cum + run.high
        if high > peak or high == peak > 0:
            peak, peak_at = high, run.high_at
        cum += run.net
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
