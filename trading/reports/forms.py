"""The reports' filter form: a preset or custom period of UTC days, and market, venue and mode."""

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from markets.models import Exchange, Market
from portfolio.models import Mode
from trading.history import DayField
from trading.reports.figures import Filters, Period

PRESETS = {"today": 1, "7d": 7, "30d": 30, "365d": 365}


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
    since = DayField(label="From (UTC)")
    until = DayField(label="To (UTC)")
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
