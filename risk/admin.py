"""Risk profiles in the admin (Risk managers edit, the rest read) and the kill switch (read-only).

arbsite's admin re-registers the profile admin with what spans apps: the audit trail, the desk's
live status panel and the recent decisions.
"""

from django import forms
from django.contrib import admin

from portfolio.admin import ReadOnlyAdmin

from .models import KillSwitch, RiskProfile, VenuePause


class RiskProfileForm(forms.ModelForm):
    class Meta:
        model = RiskProfile
        fields = "__all__"

    def clean(self) -> dict:
        data = super().clean()
        self.instance.is_active = data.get("is_active", False)
        self.instance.clean_allowed(
            list(data.get("allowed_exchanges") or []), list(data.get("allowed_markets") or [])
        )
        return data


@admin.register(RiskProfile)
class RiskProfileAdmin(admin.ModelAdmin):
    form = RiskProfileForm
    list_display = ["name", "mode", "is_active", "auto_execute", "max_notional", "updated_at"]
    list_filter = ["mode", "is_active"]
    filter_horizontal = ["allowed_exchanges", "allowed_markets"]


@admin.register(KillSwitch)
class KillSwitchAdmin(ReadOnlyAdmin):
    """Read-only: the switch is thrown and reset from the desk's own pages, which audit it."""

    list_display = ["is_on", "reason", "automatic", "changed_by", "changed_at"]


@admin.register(VenuePause)
class VenuePauseAdmin(ReadOnlyAdmin):
    """Read-only: the desk pauses and resumes venues itself, from their acknowledgement times."""

    list_display = ["exchange", "mode", "p99_ms", "limit_ms", "orders", "paused_at", "resumed_at"]
    list_filter = ["mode", "exchange"]
