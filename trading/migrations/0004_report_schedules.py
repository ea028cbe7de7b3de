"""The report jobs in django-celery-beat's database schedule (UTC): rollup, summary, retention."""

from django.db import migrations

# (name, task, minute, hour): run just after midnight UTC, rollup first.
JOBS = [
    ("trading-daily-rollup", "trading.tasks.roll_up_days", "5", "0"),
    ("trading-daily-summary-export", "trading.tasks.daily_summary_export", "15", "0"),
    ("trading-retention", "trading.tasks.apply_retention", "30", "0"),
]


def create_schedules(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in JOBS:
        schedule, _ = crontab_model.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        task_model.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": schedule, "enabled": True}
        )


def remove_schedules(apps, schema_editor):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    task_model.objects.filter(name__in=[name for name, *_ in JOBS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0003_reports"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
