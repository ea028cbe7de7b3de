"""Report figures for a period, computed by database aggregation over rollups and raw rows.

Whole past days listed in RollupDay come from the rollup tables; every other day (today, or a
day not rolled up yet) from the raw rows, grouped the same way, so both give the same figures.
"""

from collections import Counter
from datetime import UTC, date, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_

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
    Subquery,
    Sum,
)
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone

from markets.models import Exchange, Market
from markets.money import ZERO, day_start, money
from portfolio.models import LedgerEntry
from trading.models import (
    DailyDrawdown,
    DailyOpportunityRollup,
    DailyRollup,
    DailyVenueRollup,
    Fill,
    Opportunity,
    Order,
    RollupDay,
    Trade,
)
from trading.reports.figures import (
    DURATION_BUCKETS,
    Filters,
    OpportunityFigures,
    Period,
    Report,
    TradeFigures,
    fold_report,
)
from trading.reports.performance import (
    DayRun,
    Drawdown,
    Holding,
    Performance,
    RunPoint,
    VenueReturn,
    day_runs,
    holding_values,
    join_days,
)

# Money sums: wider than a money column (numeric(28, 12)) so a long period's total fits.
MONEY = DecimalField(max_digits=40, decimal_places=12)
# Notional sums (amount times price) unrounded, as DailyVenueRollup keeps them.
CAPITAL = DecimalField(max_digits=60, decimal_places=24)
State = Trade.State
FAILED_STATES = [State.FAILED, State.REJECTED]
WON, LOST = Q(realised_net_profit__gt=0), Q(realised_net_profit__lt=0)
# (day, market id, buy venue id, sell venue id, mode); mode is "" for opportunities.
Key = tuple[date, int, int, int, str]
KEY_FIELDS = ["day", "market_id", "buy_exchange_id", "sell_exchange_id"]


def _optional_money(value: Decimal | float | None) -> Decimal | None:
    return None if value is None else money(value)


def _day(value: date | str) -> date:
    """A TruncDate value as a date (a date already, or its ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


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
            n_wins=Count("pk", filter=closed & WON),
            net=Sum("realised_net_profit", filter=closed, output_field=MONEY),
            s_won=Sum("realised_net_profit", filter=closed & WON, output_field=MONEY),
            s_lost=Sum("realised_net_profit", filter=closed & LOST, output_field=MONEY),
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
            won=money(r["s_won"]),
            lost=money(r["s_lost"]),
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


def venue_capital(trades: QuerySet) -> dict[tuple[Key, int], Decimal]:
    """The notional (amount times price, unrounded) the orders of the closed `trades` filled,
    by trade group (as trade_groups keys them) and the venue of the order."""
    rows = (
        Order.objects.filter(trade__in=trades.filter(state=State.CLOSED).values("pk"))
        .values(
            "exchange_id",
            day=TruncDate("trade__closed_at", tzinfo=UTC),
            market_id=F("trade__opportunity__market_id"),
            buy_exchange_id=F("trade__opportunity__buy_exchange_id"),
            sell_exchange_id=F("trade__opportunity__sell_exchange_id"),
            mode=F("trade__mode"),
        )
        .annotate(capital=Sum(F("filled_amount") * F("average_price"), output_field=CAPITAL))
        .order_by()
    )
    return {(_key(r), r["exchange_id"]): r["capital"] or ZERO for r in rows}


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
    """Sum the {name: count} JSON `column` by name in the database (jsonb_each_text), per key
    when `rows` is a values() queryset of the key fields, else in one total under None."""
    names = [*rows.query.values_select, *rows.query.annotation_select]
    inner = rows.annotate(counters=F(column)).order_by() if names else rows.values(column)
    sql, params = inner.query.sql_with_params()
    quoted = "".join(f't."{name}", ' for name in names)
    source = "counters" if names else column
    each, value = f'jsonb_each_text(t."{source}") AS j(key, value)', "j.value::numeric"
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
            s_won=Sum("won", output_field=MONEY),
            s_lost=Sum("lost", output_field=MONEY),
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
            won=money(r["s_won"]),
            lost=money(r["s_lost"]),
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


def _matching(qs: QuerySet, filters: Filters, prefix: str = "opportunity__") -> QuerySet:
    """`qs` narrowed to `filters`; trades reach market and venues through their opportunity
    (`prefix`), rollup rows carry them themselves (prefix "")."""
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


def settled_trades(period: Period, filters: Filters) -> QuerySet:
    """Trades settled (closed, failed or rejected) in `period` that match `filters`: the rows a
    trades export holds, counted in the report as closed + failed."""
    qs = Trade.objects.filter(closed_at__gte=period.start, closed_at__lt=period.end)
    return _matching(qs, filters)


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
                    f"{field_name}__gte": day_start(a),
                    f"{field_name}__lt": day_start(b + timedelta(days=1)),
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
        rollups = _matching(DailyRollup.objects.filter(day__in=rolled), filters, prefix="")
        groups += _rolled_trade_groups(rollups).items()
        opp_rollups = _filter_opportunities(
            DailyOpportunityRollup.objects.filter(day__in=rolled), filters
        )
        opportunities.add(_rolled_opportunity_total(opp_rollups))
    if raw_days:
        trades = _matching(Trade.objects.filter(_raw_ranges(raw_days, "closed_at")), filters)
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
    return _matching(qs, Filters(market=filters.market, venue=filters.venue), prefix="")


def _fold(
    period: Period,
    filters: Filters,
    groups: list[tuple[Key, TradeFigures]],
    opportunities: OpportunityFigures,
    rolled: int,
) -> Report:
    markets = dict(Market.objects.values_list("pk", "symbol"))
    venues = dict(Exchange.objects.values_list("pk", "name"))
    named = [
        (day, markets[market_id], (venues[buy_id], venues[sell_id]), figures)
        for (day, market_id, buy_id, sell_id, _mode), figures in groups
    ]
    return fold_report(period, filters, named, opportunities, rolled)


# Performance ---------------------------------------------------------------------------------


def performance_of(report: Report) -> Performance:
    """The closed trades of `report` judged: won against lost and fees (from its total), the
    maximum drawdown and each venue's return on the notional put to work there."""
    rolled = rolled_days(report.period)
    return Performance(
        closed=report.total.closed,
        gross_won=report.total.won,
        gross_lost=report.total.lost,
        fees=report.total.fees,
        drawdown=_drawdown(report.period, report.filters, rolled),
        venues=_venue_returns(report, _capital_by_venue(report.period, report.filters, rolled)),
    )


def _capital_by_venue(period: Period, filters: Filters, rolled: set[date]) -> dict[int, Decimal]:
    """The notional the period's closed trades that match `filters` filled on each venue (by
    id): rollups for the rolled days, the orders for the rest."""
    capital: Counter = Counter()
    if rolled:
        rollups = _matching(DailyRollup.objects.filter(day__in=rolled), filters, prefix="")
        rows = (
            DailyVenueRollup.objects.filter(rollup__in=rollups)
            .values_list("exchange_id")
            .annotate(s=Sum("capital", output_field=CAPITAL))
            .order_by()
        )
        capital.update(dict(rows))
    raw_days = [d for d in period.days if d not in rolled]
    if raw_days:
        trades = _matching(Trade.objects.filter(_raw_ranges(raw_days, "closed_at")), filters)
        for (_, venue_id), notional in venue_capital(trades).items():
            capital[venue_id] += notional
    return capital


def _venue_returns(report: Report, capital: dict[int, Decimal]) -> tuple[VenueReturn, ...]:
    """Each venue's capital beside the net PnL of the closed trades with a leg there (each
    venue pair's net counted on both of its venues)."""
    net: Counter = Counter()
    for (buy, sell), figures in report.by_pair.items():
        if figures.closed:
            net[buy] += figures.net_profit
            net[sell] += figures.net_profit
    names = dict(Exchange.objects.filter(pk__in=capital.keys()).values_list("pk", "name"))
    notional: Counter = Counter()
    for pk, name in names.items():
        notional[name] += capital[pk]
    return tuple(
        VenueReturn(name, money(notional.get(name)), money(net.get(name)))
        for name in sorted(notional.keys() | net.keys())
    )


def _drawdown(period: Period, filters: Filters, rolled: set[date]) -> Drawdown | None:
    """The maximum drawdown of the period's closed trades that match `filters`: the runs the
    rollups keep of each rolled day for that filter, joined with the other days' runs read
    from their trades."""
    stored = DailyDrawdown.objects.filter(
        day__in=rolled, market=filters.market, venue=filters.venue, mode=filters.mode
    )
    runs = {row.day: _stored_run(row) for row in stored}
    raw_days = [d for d in period.days if d not in rolled]
    if raw_days:
        trades = Trade.objects.filter(_raw_ranges(raw_days, "closed_at"), state=State.CLOSED)
        rows = (
            _matching(trades, filters)
            .order_by("closed_at", "id")
            .values_list("closed_at", "id", "realised_net_profit")
        )
        runs.update(day_runs(rows.iterator(chunk_size=5000)))
    return join_days(runs[day] for day in sorted(runs))


# A DailyDrawdown row keeps each of a run's two points as low_<field> and fall_<field>.
RUN_POINT_FIELDS = ("at", "id", "cum", "high", "high_at")


def _stored_run(row: DailyDrawdown) -> DayRun:
    def point(name: str) -> RunPoint:
        return RunPoint(*(getattr(row, f"{name}_{field}") for field in RUN_POINT_FIELDS))

    return DayRun(row.net, row.high, row.high_at, point("low"), point("fall"))


def holding_of(period: Period, filters: Filters) -> tuple[list[Holding], list[str]]:
    """The inventory at the period's start (its mode and venue, by `filters`) valued at the
    period's end prices (each market's last fill before it ends) beside the desk's inventory at
    the end: three queries."""
    entries = LedgerEntry.objects.all()
    if filters.mode:
        entries = entries.filter(account__mode=filters.mode)
    if filters.venue:
        entries = entries.filter(account__exchange=filters.venue)

    def inventory(before) -> dict[str, Decimal]:
        rows = entries.filter(created_at__lt=before).values_list("asset")
        return {a: money(s) for a, s in rows.annotate(s=Sum("amount", output_field=MONEY))}

    last_fill = Fill.objects.filter(
        order__trade__opportunity__market=OuterRef("pk"), at__lt=period.end
    ).order_by("-at", "-id")
    markets = Market.objects.annotate(price=Subquery(last_fill.values("price")[:1]))
    prices = {
        m.base: (m.quote, money(m.price))
        for m in markets.filter(price__isnull=False).order_by("symbol")
    }
    return holding_values(inventory(period.start), inventory(period.end), prices)
