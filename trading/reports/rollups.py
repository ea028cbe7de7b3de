"""Daily rollups of settled trades and opportunities, and the retention of old raw rows."""

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import groupby, product

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from trading.models import (
    DailyDrawdown,
    DailyOpportunityRollup,
    DailyRollup,
    DailyVenueRollup,
    Export,
    Opportunity,
    RollupDay,
    Trade,
)
from trading.reports.figures import Filters, Period
from trading.reports.performance import day_run
from trading.reports.queries import (
    RUN_POINT_FIELDS,
    opportunity_groups,
    settled_trades,
    trade_groups,
    venue_capital,
)

log = logging.getLogger(__name__)

# The figures `roll_up_trades` computes. Raise it with any change to them: the days rolled up with
# older figures (RollupDay.trades_version) are rolled up again after `migrate` (trading.apps), by
# the code and on the schema that are current then, not by a migration's copy of the code.
TRADES_ROLLUP_VERSION = 1


def roll_up(first: date, last: date) -> int:
    """Recompute the rollups of the whole UTC days `first`..`last` (before today) from the raw
    rows and mark them complete, in one transaction. Returns the number of rollup rows."""
    last = min(last, timezone.now().date() - timedelta(days=1))
    if last < first:
        return 0
    period = Period(first, last)
    opportunities = Opportunity.objects.filter(
        opened_at__gte=period.start, opened_at__lt=period.end
    )
    opportunity_rows = [
        DailyOpportunityRollup(
            day=day,
            market_id=market_id,
            buy_exchange_id=buy_id,
            sell_exchange_id=sell_id,
            seen=f.seen,
            taken=f.taken,
            closed=f.closed,
            duration_total=f.duration_total,
            peak_net_profit=f.peak_net_profit,
            peak_max=f.peak_max,
            refusals=dict(f.refusals),
            durations={k: v for k, v in f.durations.items() if v},
            hours=dict(f.hours),
        )
        for (day, market_id, buy_id, sell_id, _), f in opportunity_groups(opportunities).items()
    ]
    with transaction.atomic():
        trade_rows = roll_up_trades(period)
        DailyOpportunityRollup.objects.filter(day__gte=first, day__lte=last).delete()
        DailyOpportunityRollup.objects.bulk_create(opportunity_rows, batch_size=1000)
        RollupDay.objects.filter(day__gte=first, day__lte=last).delete()
        RollupDay.objects.bulk_create(
            RollupDay(day=day, trades_version=TRADES_ROLLUP_VERSION) for day in period.days
        )
    return trade_rows + len(opportunity_rows)


@transaction.atomic
def roll_up_trades(period: Period) -> int:
    """Recompute the trades' rollups of `period` (DailyRollup with its venues, DailyDrawdown)
    from the trades, which are kept for good. Returns the number of DailyRollup rows."""
    trades = settled_trades(period, Filters())
    rows = {
        (day, market_id, buy_id, sell_id, mode): DailyRollup(
            day=day,
            market_id=market_id,
            buy_exchange_id=buy_id,
            sell_exchange_id=sell_id,
            mode=mode,
            closed=f.closed,
            failed=f.failed,
            wins=f.wins,
            volume=f.volume,
            fees=f.fees,
            net_profit=f.net_profit,
            won=f.won,
            lost=f.lost,
            worst=f.worst,
            best=f.best,
            one_legged=f.one_legged,
            one_legged_cost=f.one_legged_cost,
        )
        for (day, market_id, buy_id, sell_id, mode), f in trade_groups(trades).items()
    }
    days = {"day__gte": period.first, "day__lte": period.last}
    DailyRollup.objects.filter(**days).delete()
    DailyRollup.objects.bulk_create(rows.values(), batch_size=1000)
    DailyVenueRollup.objects.bulk_create(
        (
            DailyVenueRollup(rollup=rows[key], exchange_id=venue_id, capital=capital)
            for (key, venue_id), capital in venue_capital(trades).items()
        ),
        batch_size=1000,
    )
    DailyDrawdown.objects.filter(**days).delete()
    DailyDrawdown.objects.bulk_create(_drawdown_rows(trades), batch_size=1000)
    return len(rows)


def _drawdown_rows(trades: QuerySet) -> Iterator[DailyDrawdown]:
    """The run of each day of the closed `trades` for each filter a report can choose that
    selects some of them (any or its market, any or either of its venues, any or its mode)."""
    closed = trades.filter(state=Trade.State.CLOSED).order_by("closed_at", "id")
    rows = closed.values_list(
        "closed_at",
        "id",
        "realised_net_profit",
        "opportunity__market_id",
        "opportunity__buy_exchange_id",
        "opportunity__sell_exchange_id",
        "mode",
    )
    by_day = groupby(rows.iterator(chunk_size=5000), key=lambda row: row[0].astimezone(UTC).date())
    for day, day_trades in by_day:
        selected: dict[tuple, list] = {}
        for at, trade_id, pnl, market_id, buy_id, sell_id, mode in day_trades:
            for key in product((None, market_id), {None, buy_id, sell_id}, ("", mode)):
                selected.setdefault(key, []).append((at, trade_id, pnl))
        for (market_id, venue_id, mode), chosen in selected.items():
            run = day_run(chosen)
            points = {
                f"{name}_{field}": getattr(point, field)
                for name, point in (("low", run.low), ("fall", run.fall))
                for field in RUN_POINT_FIELDS
            }
            yield DailyDrawdown(
                day=day,
                market_id=market_id,
                venue_id=venue_id,
                mode=mode,
                net=run.net,
                high=run.high,
                high_at=run.high_at,
                **points,
            )


def roll_up_stale_trades() -> list[date]:
    """Roll the trades of each rolled-up day whose figures are older than TRADES_ROLLUP_VERSION
    up again, a day per transaction (the opportunities' rollups stay: their raw rows may be
    gone); return those days."""
    stale = RollupDay.objects.filter(trades_version__lt=TRADES_ROLLUP_VERSION).order_by("day")
    days = list(stale.values_list("day", flat=True))
    for day in days:
        with transaction.atomic():
            roll_up_trades(Period(day, day))
            RollupDay.objects.filter(day=day).update(trades_version=TRADES_ROLLUP_VERSION)
    if days:
        log.info("rollups: the trades of %d days rolled up again, current figures", len(days))
    return days


def roll_up_missing(today: date | None = None) -> list[date]:
    """Roll up yesterday again (late settlements) and every day of the retention window not
    rolled up yet; older days are left alone, their raw opportunities may be gone."""
    today = today or timezone.now().date()
    window = [today - timedelta(days=n) for n in range(settings.RETENTION_DAYS, 0, -1)]
    done = set(RollupDay.objects.filter(day__in=window).values_list("day", flat=True))
    todo = [day for day in window if day not in done or day == today - timedelta(days=1)]
    for day in todo:
        roll_up(day, day)
    return todo


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Delete closed opportunities never taken older than RETENTION_DAYS (only on days already
    rolled up, so the report keeps counting them) and expired exports with their files."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_DAYS)
    stale = Opportunity.objects.filter(
        state=Opportunity.State.CLOSED, opened_at__lt=cutoff, trades__isnull=True
    ).filter(Exists(RollupDay.objects.filter(day=OuterRef("opened_at__date"))))
    opportunities, _ = stale.delete()
    exports = 0
    for export in Export.objects.filter(expires_at__lte=now):
        if export.file:
            export.file.delete(save=False)
        export.delete()
        exports += 1
    log.info("retention: %d opportunities, %d exports deleted", opportunities, exports)
    return {"opportunities": opportunities, "exports": exports}
