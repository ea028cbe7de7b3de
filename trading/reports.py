"""Report figures for a period, computed by database aggregation over rollups and raw rows.

Whole past days listed in RollupDay come from the rollup tables; every other day (today, or a
day not rolled up yet) from the raw rows, grouped the same way, so both give the same figures.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_

from django import forms
from django.db import connections
from django.db.models import (
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone

from markets.models import Exchange, Market
from portfolio.models import Mode
from trading.models import (
    DailyOpportunityRollup,
    DailyRollup,
    Opportunity,
    Order,
    RollupDay,
    Trade,
)

ZERO = Decimal(0)
SCALE = Decimal("1e-12")  # the money columns' scale: every figure is quantized to it
MONEY = DecimalField(max_digits=40, decimal_places=12)
State = Trade.State
FAILED_STATES = [State.FAILED, State.REJECTED]
PRESETS = {"today": 1, "7d": 7, "30d": 30, "365d": 365}
# Spread duration histogram: (label, lower bound s, upper bound s or None).
DURATION_BUCKETS = [
    ("< 1 s", 0, 1),
    ("1-5 s", 1, 5),
    ("5-30 s", 5, 30),
    ("30 s-2 min", 30, 120),
    ("2-10 min", 120, 600),
    (">= 10 min", 600, None),
]
# (day, market id, buy venue id, sell venue id, mode); mode is "" for opportunities.
Key = tuple[date, int, int, int, str]
KEY_FIELDS = ["day", "market_id", "buy_exchange_id", "sell_exchange_id"]


def money(value) -> Decimal:
    """An aggregate as an exact Decimal at money scale (SQLite may hand back a float)."""
    if value is None:
        return ZERO
    if isinstance(value, float):
        value = Decimal(repr(value))
    return Decimal(value).quantize(SCALE)


def _optional_money(value) -> Decimal | None:
    return None if value is None else money(value)


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return _day_start(self.first)

    @property
    def end(self) -> datetime:
        return _day_start(self.last + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True, slots=True)
class Filters:
    market: Market | None = None
    venue: Exchange | None = None
    mode: str = ""


@dataclass(slots=True)
class TradeFigures:
    """Settled trades: closed ones with their realised PnL, and failed or rejected ones."""

    closed: int = 0
    failed: int = 0
    wins: int = 0
    volume: Decimal = ZERO
    fees: Decimal = ZERO
    net_profit: Decimal = ZERO
    worst: Decimal | None = None
    best: Decimal | None = None
    one_legged: int = 0
    one_legged_cost: Decimal = ZERO

    def add(self, other: "TradeFigures") -> "TradeFigures":
        self.closed += other.closed
        self.failed += other.failed
        self.wins += other.wins
        self.volume += other.volume
        self.fees += other.fees
        self.net_profit += other.net_profit
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
        return (self.net_profit / self.closed).quantize(SCALE) if self.closed else None

    @property
    def win_rate(self) -> Decimal | None:
        """Share of closed trades with a positive realised PnL, in percent."""
        return (
            (Decimal(100) * self.wins / self.closed).quantize(Decimal("0.01"))
            if self.closed
            else None
        )


def _pick(choose, a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else choose(a, b)


@dataclass(slots=True)
class OpportunityFigures:
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


# Raw rows ----------------------------------------------------------------------------------


def trade_groups(trades: QuerySet) -> dict[Key, TradeFigures]:
    """Settled trades grouped by (closed day, market, venue pair, mode): two queries."""
    one_legged = Exists(
        Order.objects.filter(
            trade=OuterRef("pk"), purpose__in=[Order.Purpose.HEDGE, Order.Purpose.UNWIND]
        )
    )
    closed = Q(state=State.CLOSED)
    rows = (
        trades.filter(closed_at__isnull=False)
        .annotate(is_one_legged=one_legged)
        .values(
            "mode",
            day=TruncDate("closed_at", tzinfo=UTC),
            market_id=F("opportunity__market_id"),
            buy_exchange_id=F("opportunity__buy_exchange_id"),
            sell_exchange_id=F("opportunity__sell_exchange_id"),
        )
        .annotate(
            n_closed=Count("pk", filter=closed),
            n_failed=Count("pk", filter=Q(state__in=FAILED_STATES)),
            n_wins=Count("pk", filter=closed & Q(realised_net_profit__gt=0)),
            net=Sum("realised_net_profit", filter=closed, output_field=MONEY),
            worst=Min("realised_net_profit", filter=closed),
            best=Max("realised_net_profit", filter=closed),
            n_one_legged=Count("pk", filter=closed & Q(is_one_legged=True)),
            one_legged_cost=Sum(
                F("expected_net_profit") - F("realised_net_profit"),
                filter=closed & Q(is_one_legged=True),
                output_field=MONEY,
            ),
        )
        .order_by()
    )
    groups = {
        _key(r): TradeFigures(
            closed=r["n_closed"],
            failed=r["n_failed"],
            wins=r["n_wins"],
            net_profit=money(r["net"]),
            worst=_optional_money(r["worst"]),
            best=_optional_money(r["best"]),
            one_legged=r["n_one_legged"],
            one_legged_cost=money(r["one_legged_cost"]),
        )
        for r in rows
    }
    orders = (
        Order.objects.filter(trade__in=trades.filter(closed).values("pk"))
        .values(
            day=TruncDate("trade__closed_at", tzinfo=UTC),
            market_id=F("trade__opportunity__market_id"),
            buy_exchange_id=F("trade__opportunity__buy_exchange_id"),
            sell_exchange_id=F("trade__opportunity__sell_exchange_id"),
            mode=F("trade__mode"),
        )
        .annotate(
            fees=Sum("fee", output_field=MONEY),
            volume=Sum(F("filled_amount") * F("average_price"), output_field=MONEY),
        )
        .order_by()
    )
    for r in orders:
        figures = groups.setdefault(_key(r), TradeFigures())
        figures.fees, figures.volume = money(r["fees"]), money(r["volume"])
    return groups


def _key(row: dict) -> Key:
    return (
        _day(row["day"]),
        row["market_id"],
        row["buy_exchange_id"],
        row["sell_exchange_id"],
        row.get("mode", ""),
    )


def _duration_bucket(lower: int, upper: int | None) -> Q:
    q = Q(closed_at__gte=F("opened_at") + timedelta(seconds=lower))
    if upper is not None:
        q &= Q(closed_at__lt=F("opened_at") + timedelta(seconds=upper))
    return q


def opportunity_groups(opportunities: QuerySet) -> dict[Key, OpportunityFigures]:
    """Opportunities grouped by (opened day, market, venue pair): three queries."""
    keys = {"day": TruncDate("opened_at", tzinfo=UTC)}
    duration = ExpressionWrapper(F("closed_at") - F("opened_at"), output_field=DurationField())
    buckets = {
        f"bucket_{i}": Count("pk", filter=_duration_bucket(lower, upper))
        for i, (_, lower, upper) in enumerate(DURATION_BUCKETS)
    }
    rows = (
        opportunities.annotate(is_taken=Exists(Trade.objects.filter(opportunity=OuterRef("pk"))))
        .values("market_id", "buy_exchange_id", "sell_exchange_id", **keys)
        .annotate(
            n_seen=Count("pk"),
            n_taken=Count("pk", filter=Q(is_taken=True)),
            n_closed=Count("pk", filter=Q(closed_at__isnull=False)),
            duration=Sum(duration),
            peak=Sum("peak_net_profit", output_field=MONEY),
            peak_top=Max("peak_net_profit"),
            **buckets,
        )
        .order_by()
    )
    groups = {}
    for r in rows:
        groups[_key(r)] = OpportunityFigures(
            seen=r["n_seen"],
            taken=r["n_taken"],
            closed=r["n_closed"],
            duration_total=r["duration"] or timedelta(),
            peak_net_profit=money(r["peak"]),
            peak_max=_optional_money(r["peak_top"]),
            durations=Counter(
                {label: r[f"bucket_{i}"] for i, (label, *_) in enumerate(DURATION_BUCKETS)}
            ),
        )
    hours = (
        opportunities.values(
            "market_id",
            "buy_exchange_id",
            "sell_exchange_id",
            hour=ExtractHour("opened_at"),
            **keys,
        )
        .annotate(n=Count("pk"))
        .order_by()
    )
    for r in hours:
        groups[_key(r)].hours[str(r["hour"])] += r["n"]
    refusals = json_counter_sums(
        opportunities.values("market_id", "buy_exchange_id", "sell_exchange_id", **keys),
        "refusals",
    )
    for row_key, counters in refusals.items():
        groups[row_key].refusals.update(counters)
    return groups


def json_counter_sums(rows: QuerySet, column: str) -> dict[Key | None, Counter]:
    """Sum the {name: count} JSON `column` by name in the database (jsonb_each_text on
    PostgreSQL, json_each on SQLite), per key when `rows` is a values() queryset of the key
    fields, else in one total under None."""
    names = [*rows.query.values_select, *rows.query.annotation_select]
    inner = rows.annotate(counters=F(column)).order_by() if names else rows.values(column)
    sql, params = inner.query.sql_with_params()
    quoted = "".join(f't."{name}", ' for name in names)
    source = "counters" if names else column
    if connections[rows.db].vendor == "postgresql":
        each, value = f'jsonb_each_text(t."{source}") AS j(key, value)', "j.value::numeric"
    else:
        each, value = f'json_each(t."{source}") AS j', "j.value"
    query = (
        f"SELECT {quoted}j.key, SUM({value}) FROM ({sql}) t CROSS JOIN {each} "
        f"GROUP BY {quoted}j.key"
    )
    sums: dict[Key | None, Counter] = {}
    with connections[rows.db].cursor() as cursor:
        cursor.execute(query, params)
        for *values, name, total in cursor.fetchall():
            key = _key(dict(zip(names, values, strict=True))) if names else None
            sums.setdefault(key, Counter())[name] += int(total)
    return sums


# Rollups -----------------------------------------------------------------------------------


def _rolled_trade_groups(rollups: QuerySet) -> dict[Key, TradeFigures]:
    rows = (
        rollups.values(*KEY_FIELDS)
        .annotate(
            n_closed=Sum("closed"),
            n_failed=Sum("failed"),
            n_wins=Sum("wins"),
            s_volume=Sum("volume", output_field=MONEY),
            s_fees=Sum("fees", output_field=MONEY),
            s_net=Sum("net_profit", output_field=MONEY),
            s_worst=Min("worst"),
            s_best=Max("best"),
            n_one_legged=Sum("one_legged"),
            s_one_legged_cost=Sum("one_legged_cost", output_field=MONEY),
        )
        .order_by()
    )
    return {
        _key(r): TradeFigures(
            closed=r["n_closed"],
            failed=r["n_failed"],
            wins=r["n_wins"],
            volume=money(r["s_volume"]),
            fees=money(r["s_fees"]),
            net_profit=money(r["s_net"]),
            worst=_optional_money(r["s_worst"]),
            best=_optional_money(r["s_best"]),
            one_legged=r["n_one_legged"],
            one_legged_cost=money(r["s_one_legged_cost"]),
        )
        for r in rows
    }


def _rolled_opportunity_total(rollups: QuerySet) -> OpportunityFigures:
    totals = rollups.aggregate(
        n_seen=Sum("seen"),
        n_taken=Sum("taken"),
        n_closed=Sum("closed"),
        duration=Sum("duration_total"),
        peak=Sum("peak_net_profit", output_field=MONEY),
        peak_top=Max("peak_max"),
    )
    figures = OpportunityFigures(
        seen=totals["n_seen"] or 0,
        taken=totals["n_taken"] or 0,
        closed=totals["n_closed"] or 0,
        duration_total=totals["duration"] or timedelta(),
        peak_net_profit=money(totals["peak"]),
        peak_max=_optional_money(totals["peak_top"]),
    )
    for column in ("refusals", "durations", "hours"):
        for counters in json_counter_sums(rollups, column).values():
            getattr(figures, column).update(counters)
    return figures


# The report ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
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
        return (
            (Decimal(100) * self.total.net_profit / peak).quantize(Decimal("0.01"))
            if peak
            else None
        )

    def chart_data(self) -> dict:
        """Series for static/js/reports.js (floats: they are only drawn)."""
        days = self.period.days
        daily = [float(self.by_day[d].net_profit) if d in self.by_day else 0.0 for d in days]
        cumulative, running = [], 0.0
        for value in daily:
            running += value
            cumulative.append(round(running, 8))
        hours = self.opportunities.hours
        durations = self.opportunities.durations
        return {
            "days": [int(_day_start(d).timestamp()) for d in days],
            "daily_net": daily,
            "cumulative_net": cumulative,
            "hours": list(range(24)),
            "opportunities_by_hour": [hours.get(str(h), 0) for h in range(24)],
            "duration_labels": [label for label, *_ in DURATION_BUCKETS],
            "duration_counts": [durations.get(label, 0) for label, *_ in DURATION_BUCKETS],
        }


def _filter_trades(qs: QuerySet, filters: Filters, prefix: str = "opportunity__") -> QuerySet:
    if filters.market:
        qs = qs.filter(**{f"{prefix}market": filters.market})
    if filters.venue:
        qs = qs.filter(
            Q(**{f"{prefix}buy_exchange": filters.venue})
            | Q(**{f"{prefix}sell_exchange": filters.venue})
        )
    if filters.mode:
        qs = qs.filter(mode=filters.mode)
    return qs


def filtered_trades(period: Period, filters: Filters) -> QuerySet:
    """Trades settled (closed, failed or rejected) in `period` that match `filters`."""
    qs = Trade.objects.filter(closed_at__gte=period.start, closed_at__lt=period.end)
    return _filter_trades(qs, filters)


def _raw_ranges(days: list[date], field_name: str) -> Q:
    """Contiguous runs of `days` as one OR of half-open ranges on `field_name`."""
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return reduce(
        or_,
        (
            Q(
                **{
                    f"{field_name}__gte": _day_start(a),
                    f"{field_name}__lt": _day_start(b + timedelta(days=1)),
                }
            )
            for a, b in runs
        ),
    )


def rolled_days(period: Period, today: date | None = None) -> set[date]:
    """The days of `period` before today whose rollups are complete."""
    today = today or timezone.now().date()
    return set(
        RollupDay.objects.filter(
            day__gte=period.first, day__lte=period.last, day__lt=today
        ).values_list("day", flat=True)
    )


def build_report(period: Period, filters: Filters, *, use_rollups: bool = True) -> Report:
    """The figures for `period` and `filters`; `use_rollups=False` reads raw rows only."""
    rolled = rolled_days(period) if use_rollups else set()
    raw_days = [d for d in period.days if d not in rolled]
    groups: list[tuple[Key, TradeFigures]] = []
    opportunities = OpportunityFigures()
    if rolled:
        rollups = _filter_trades(DailyRollup.objects.filter(day__in=rolled), filters, prefix="")
        groups += _rolled_trade_groups(rollups).items()
        opp_rollups = _filter_opportunities(
            DailyOpportunityRollup.objects.filter(day__in=rolled), filters
        )
        opportunities.add(_rolled_opportunity_total(opp_rollups))
    if raw_days:
        trades = _filter_trades(Trade.objects.filter(_raw_ranges(raw_days, "closed_at")), filters)
        groups += trade_groups(trades).items()
        # Naming both states lets the (state, -opened_at) index serve the date range.
        opps = _filter_opportunities(
            Opportunity.objects.filter(
                _raw_ranges(raw_days, "opened_at"), state__in=Opportunity.State.values
            ),
            filters,
        )
        for figures in opportunity_groups(opps).values():
            opportunities.add(figures)
    return _fold(period, filters, groups, opportunities, len(rolled))


def _filter_opportunities(qs: QuerySet, filters: Filters) -> QuerySet:
    """Market and venue apply to opportunities; mode does not (an opportunity has none)."""
    return _filter_trades(qs, Filters(market=filters.market, venue=filters.venue), prefix="")


def _fold(
    period: Period,
    filters: Filters,
    groups: list[tuple[Key, TradeFigures]],
    opportunities: OpportunityFigures,
    rolled: int,
) -> Report:
    markets = dict(Market.objects.values_list("pk", "symbol"))
    venues = dict(Exchange.objects.values_list("pk", "name"))
    total = TradeFigures()
    by_day: dict[date, TradeFigures] = {}
    by_market: dict[str, TradeFigures] = {}
    by_pair: dict[tuple[str, str], TradeFigures] = {}
    for (day, market_id, buy_id, sell_id, _mode), figures in groups:
        total.add(figures)
        by_day.setdefault(day, TradeFigures()).add(figures)
        by_market.setdefault(markets[market_id], TradeFigures()).add(figures)
        by_pair.setdefault((venues[buy_id], venues[sell_id]), TradeFigures()).add(figures)
    return Report(
        period=period,
        filters=filters,
        total=total,
        by_day=dict(sorted(by_day.items())),
        by_market=dict(sorted(by_market.items())),
        by_pair=dict(sorted(by_pair.items())),
        opportunities=opportunities,
        rolled_days=rolled,
    )


# The filter form ----------------------------------------------------------------------------


class ReportFilter(forms.Form):
    period = forms.ChoiceField(
        choices=[
            ("today", "Today"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
            ("365d", "Last 365 days"),
            ("custom", "Custom"),
        ],
        required=False,
        initial="7d",
    )
    since = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To (UTC)", widget=forms.DateInput({"type": "date"})
    )
    market = forms.ModelChoiceField(
        Market.objects.all(), to_field_name="symbol", required=False, empty_label="Any market"
    )
    venue = forms.ModelChoiceField(
        Exchange.objects.all(), to_field_name="slug", required=False, empty_label="Any venue"
    )
    mode = forms.ChoiceField(choices=[("", "Paper or live"), *Mode.choices], required=False)

    MAX_DAYS = 731

    def clean(self) -> dict:
        data = super().clean()
        if data.get("period") == "custom":
            since, until = data.get("since"), data.get("until")
            if not since or not until:
                raise forms.ValidationError("A custom period needs both dates.")
            if until < since:
                raise forms.ValidationError("The period ends before it starts.")
            if (until - since).days >= self.MAX_DAYS:
                raise forms.ValidationError(f"A period is at most {self.MAX_DAYS} days.")
        return data

    def period_and_filters(self, today: date | None = None) -> tuple[Period, Filters]:
        """The chosen period (default: the last 7 days) and filters; call after is_valid()."""
        data = self.cleaned_data
        today = today or timezone.now().date()
        preset = data.get("period") or "7d"
        if preset == "custom":
            period = Period(data["since"], data["until"])
        else:
            period = Period(today - timedelta(days=PRESETS[preset] - 1), today)
        filters = Filters(
            market=data.get("market"), venue=data.get("venue"), mode=data.get("mode") or ""
        )
        return period, filters


def report_for(params, today: date | None = None) -> tuple[ReportFilter, Report | None]:
    """Bind `params` (a QueryDict or dict) and build its report; None when the form is invalid."""
    form = ReportFilter(params)
    if not form.is_valid():
        return form, None
    period, filters = form.period_and_filters(today)
    return form, build_report(period, filters)
