"""The daily sync of the venues' trading rules in django-celery-beat's schedule (UTC)."""

from django.db import migrations

NAME, TASK = "markets-daily-trading-rules", "markets.tasks.sync_trading_rules"


def create_schedule(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    # Before the report jobs, so the day starts on the venues' current ticks, lots and minimums.
    schedule, _ = crontab_model.objects.get_or_create(
        minute="45",
        hour="23",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    task_model.objects.update_or_create(
        name=NAME, defaults={"task": TASK, "crontab": schedule, "enabled": True}
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0005_opportunity_leg_limits"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
