"""Daily rollups, their schedule in django-celery-beat, and the retention of old raw rows."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests.factories import OpportunityFactory, report_history
from trading import tasks
from trading.models import DailyOpportunityRollup, DailyRollup, Export, Opportunity, RollupDay
from trading.reports import rollups

pytestmark = pytest.mark.django_db


def _days_ago(n: int):
    return timezone.now().date() - timedelta(days=n)


def test_roll_up_writes_one_row_per_market_pair_and_mode_and_marks_the_day():
    day = _days_ago(2)
    report_history(day)

    rollups.roll_up(day, day)

    assert DailyRollup.objects.filter(day=day).count() == 2  # BTC paper, ETH live
    btc = DailyOpportunityRollup.objects.get(day=day, market__symbol="BTC-USD")
    assert (btc.seen, btc.taken) == (6, 3)
    assert btc.refusals == {"max notional": 5, "kill switch": 1}
    assert RollupDay.objects.filter(day=day).exists()


def test_rolling_up_twice_gives_the_same_rows():
    day = _days_ago(2)
    report_history(day)
    rollups.roll_up(day, day)
    first = list(DailyRollup.objects.values_list("net_profit", "fees", "volume", "closed"))

    rollups.roll_up(day, day)

    assert list(DailyRollup.objects.values_list("net_profit", "fees", "volume", "closed")) == first


def test_today_is_never_rolled_up():
    today = timezone.now().date()

    assert rollups.roll_up(today, today) == 0
    assert not RollupDay.objects.filter(day=today).exists()


def test_the_daily_task_rolls_up_yesterday_and_missing_days(settings):
    settings.RETENTION_DAYS = 3
    RollupDay.objects.create(day=_days_ago(3))

    done = tasks.roll_up_days()

    assert done == [_days_ago(2).isoformat(), _days_ago(1).isoformat()]
    assert set(RollupDay.objects.values_list("day", flat=True)) == {
        _days_ago(3),
        _days_ago(2),
        _days_ago(1),
    }


def _old_opportunity(days: int, **fields) -> Opportunity:
    opened = datetime.combine(_days_ago(days), time(12), tzinfo=UTC)
    return OpportunityFactory(
        opened_at=opened, detected_at=opened, closed_at=opened + timedelta(seconds=5), **fields
    )


def test_retention_deletes_old_untaken_closed_opportunities_of_rolled_days_only(settings):
    settings.RETENTION_DAYS = 90
    old = _old_opportunity(100, state="closed")
    unrolled = _old_opportunity(101, state="closed")
    still_open = _old_opportunity(100, state="open")
    recent = _old_opportunity(10, state="closed")
    RollupDay.objects.create(day=_days_ago(100))

    result = tasks.apply_retention()

    assert result["opportunities"] == 1
    remaining = set(Opportunity.objects.values_list("pk", flat=True))
    assert old.pk not in remaining
    assert {unrolled.pk, still_open.pk, recent.pk} <= remaining


def test_retention_keeps_taken_opportunities():
    from tests.factories import TradeFactory

    taken = _old_opportunity(200, state="closed")
    TradeFactory(opportunity=taken)
    RollupDay.objects.create(day=_days_ago(200))

    rollups.apply_retention()

    assert Opportunity.objects.filter(pk=taken.pk).exists()


def test_retention_deletes_expired_exports_and_their_files(settings, tmp_path):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path
    export = Export.objects.create(
        kind="summary", format="csv", expires_at=timezone.now() - timedelta(minutes=1)
    )
    export.file.save("old.csv", ContentFile(b"x"))
    path = export.file.path

    rollups.apply_retention()

    assert not Export.objects.filter(pk=export.pk).exists()
    assert not (tmp_path / path).exists()


def test_the_report_jobs_are_in_the_database_schedule():
    jobs = dict(PeriodicTask.objects.values_list("name", "task"))

    assert jobs["trading-daily-rollup"] == "trading.tasks.roll_up_days"
    assert jobs["trading-daily-summary-export"] == "trading.tasks.daily_summary_export"
    assert jobs["trading-retention"] == "trading.tasks.apply_retention"
    rollup = PeriodicTask.objects.get(name="trading-daily-rollup").crontab
    assert (rollup.hour, rollup.minute, str(rollup.timezone)) == ("0", "5", "UTC")


def test_roll_up_marks_the_day_with_the_current_figures():
    day = _days_ago(2)
    report_history(day)

    rollups.roll_up(day, day)

    assert RollupDay.objects.get(day=day).trades_version == rollups.TRADES_ROLLUP_VERSION


def _rolled_up_with_older_figures(day) -> dict:
    """Roll `day` up, then make it look as rolled up before `won` and `lost` existed: the
    figures it should have, by rollup key."""
    report_history(day)
    rollups.roll_up(day, day)
    fields = ("market_id", "mode", "won", "lost", "net_profit")
    right = {row[:2]: row for row in DailyRollup.objects.values_list(*fields)}
    assert any(row[2] or row[3] for row in right.values())  # something to lose
    DailyRollup.objects.filter(day=day).update(won=0, lost=0)
    RollupDay.objects.filter(day=day).update(trades_version=0)
    return right


def test_migrate_rolls_up_again_the_days_of_older_figures_with_the_current_code():
    day = _days_ago(3)
    right = _rolled_up_with_older_figures(day)
    current = _days_ago(2)
    report_history(current)
    rollups.roll_up(current, current)
    computed = RollupDay.objects.get(day=current).computed_at

    call_command("migrate", verbosity=0)  # nothing to apply: the newest schema, so it runs

    fields = ("market_id", "mode", "won", "lost", "net_profit")
    again = {row[:2]: row for row in DailyRollup.objects.filter(day=day).values_list(*fields)}
    assert again == right
    assert RollupDay.objects.get(day=day).trades_version == rollups.TRADES_ROLLUP_VERSION
    # A day of the current figures is left as it was.
    assert RollupDay.objects.get(day=current).computed_at == computed


def test_a_flush_rolls_nothing_up():
    day = _days_ago(3)
    _rolled_up_with_older_figures(day)

    # What `flush` sends after emptying the tables: no plan (trading.apps skips it).
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert RollupDay.objects.get(day=day).trades_version == 0
    assert not DailyRollup.objects.filter(day=day).exclude(won=0).exists()


def test_a_migrate_that_stops_short_of_the_newest_schema_rolls_nothing_up():
    day = _days_ago(3)
    _rolled_up_with_older_figures(day)
    # As after `migrate trading 0010`: the newest migration not applied (undone with the test).
    newest = MigrationExecutor(connection).loader.graph.leaf_nodes("trading")[0]
    MigrationRecorder(connection).record_unapplied(*newest)

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default", plan=[])

    assert RollupDay.objects.get(day=day).trades_version == 0
    assert not DailyRollup.objects.filter(day=day).exclude(won=0).exists()
