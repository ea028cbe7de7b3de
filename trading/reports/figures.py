"""The report's values and their maths: periods, filters, trade and opportunity figures.

Pure: plain values in and out; the queries in `queries.py` fill them from the database.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from markets.money import ZERO, day_start, money

if TYPE_CHECKING:
    from markets.models import Exchange, Market

PERCENT_PLACES = Decimal("0.01")
# Spread duration histogram: (label, lower bound s, upper bound s or None).
DURATION_BUCKETS = [
    ("< 1 s", 0, 1),
    ("1-5 s", 1, 5),
    ("5-30 s", 5, 30),
    ("30 s-2 min", 30, 120),
    ("2-10 min", 120, 600),
    (">= 10 min", 600, None),
]


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return day_start(self.first)

    @property
    def end(self) -> datetime:
        return day_start(self.last + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True, slots=True)
class Filters:
    """Which trades a report counts: one market, one venue (either leg), one mode; None is any."""

    market: "Market | None" = None
    venue: "Exchange | None" = None
    mode: str = ""


def _pick(
    choose: Callable[[Decimal, Decimal], Decimal], a: Decimal | None, b: Decimal | None
) -> Decimal | None:
    return b if a is None else a if b is None else choose(a, b)


def _percent(part: Decimal | int, whole: Decimal | int) -> Decimal:
    return (Decimal(100) * part / whole).quantize(PERCENT_PLACES)


@dataclass(slots=True)
class TradeFigures:
    """Settled trades: closed ones with their realised PnL, and failed or rejected ones."""

    closed: int = 0
    failed: int = 0
    wins: int = 0
    volume: Decimal = ZERO
    fees: Decimal = ZERO
    net_profit: Decimal = ZERO
    won: Decimal = ZERO  # the net PnL of the closed trades that made money
    lost: Decimal = ZERO  # and of those that lost it (below zero)
    worst: Decimal | None = None
    best: Decimal | None = None
    one_legged: int = 0
    one_legged_cost: Decimal = ZERO

    def add(self, other: "TradeFigures") -> "TradeFigures":
        """Fold `other` into these figures (a day into a period, a group into a total)."""
        self.closed += other.closed
        self.failed += other.failed
        self.wins += other.wins
        self.volume += other.volume
        self.fees += other.fees
        self.net_profit += other.net_profit
        self.won += other.won
        self.lost += other.lost
        self.worst = _pick(min, self.worst, other.worst)
        self.best = _pick(max, self.best, other.best)
        self.one_legged += other.one_legged
        self.one_legged_cost += other.one_legged_cost
        return self

    @property
    def gross_profit(self) -> Decimal:
        """Net PnL before fees: what the prices alone paid."""
        return self.net_profit + self.fees

    @property
    def average(self) -> Decimal | None:
        return money(self.net_profit / self.closed) if self.closed else None

    @property
    def win_rate(self) -> Decimal | None:
        """Share of closed trades with a positive realised PnL, in percent."""
        return _percent(self.wins, self.closed) if self.closed else None


@dataclass(slots=True)
class OpportunityFigures:
    """Opportunities seen: how many were taken and closed, how long they lasted, what they
    peaked at, why they were refused, and when in the day they opened."""

    seen: int = 0
    taken: int = 0
    closed: int = 0
    duration_total: timedelta = field(default_factory=timedelta)
    peak_net_profit: Decimal = ZERO
    peak_max: Decimal | None = None
    refusals: Counter = field(default_factory=Counter)
    durations: Counter = field(default_factory=Counter)
    hours: Counter = field(default_factory=Counter)

    def add(self, other: "OpportunityFigures") -> "OpportunityFigures":
        """Fold `other` into these figures."""
        self.seen += other.seen
        self.taken += other.taken
        self.closed += other.closed
        self.duration_total += other.duration_total
        self.peak_net_profit += other.peak_net_profit
        self.peak_max = _pick(max, self.peak_max, other.peak_max)
        self.refusals.update(other.refusals)
        self.durations.update(other.durations)
        self.hours.update(other.hours)
        return self

    @property
    def average_duration(self) -> timedelta | None:
        return self.duration_total / self.closed if self.closed else None

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())

    @property
    def refusals_by_count(self) -> list[tuple[str, int]]:
        """(reason, times) most frequent first; templates cannot call Counter methods."""
        return self.refusals.most_common()


@dataclass(slots=True)
class Report:
    """A period's figures: in total, by settlement day, by market and by venue pair."""

    period: Period
    filters: Filters
    total: TradeFigures
    by_day: dict[date, TradeFigures]
    by_market: dict[str, TradeFigures]
    by_pair: dict[tuple[str, str], TradeFigures]
    opportunities: OpportunityFigures
    rolled_days: int

    @property
    def capture_ratio(self) -> Decimal | None:
        """Realised net PnL of the period's closed trades over the summed peak net profit of
        every opportunity seen in it: the share of the profit on the books the desk captured."""
        peak = self.opportunities.peak_net_profit
        return _percent(self.total.net_profit, peak) if peak else None


def fold_report(
    period: Period,
    filters: Filters,
    groups: Iterable[tuple[date, str, tuple[str, str], TradeFigures]],
    opportunities: OpportunityFigures,
    rolled_days: int,
) -> Report:
    """The report of `groups` of settled trades, each (settlement day, market, (buy venue, sell
    venue), figures): their total and their sums by day, by market and by pair, each sorted."""
    total = TradeFigures()
    by_day: dict[date, TradeFigures] = {}
    by_market: dict[str, TradeFigures] = {}
    by_pair: dict[tuple[str, str], TradeFigures] = {}
    for day, market, pair, figures in groups:
        total.add(figures)
        by_day.setdefault(day, TradeFigures()).add(figures)
        by_market.setdefault(market, TradeFigures()).add(figures)
        by_pair.setdefault(pair, TradeFigures()).add(figures)
    return Report(
        period=period,
        filters=filters,
        total=total,
        by_day=dict(sorted(by_day.items())),
        by_market=dict(sorted(by_market.items())),
        by_pair=dict(sorted(by_pair.items())),
        opportunities=opportunities,
        rolled_days=rolled_days,
    )
