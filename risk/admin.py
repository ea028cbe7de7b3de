"""Risk profiles in the admin (Risk managers edit, the rest read) with the desk's status panel."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from arbsite.audit import AuditedAdminMixin
from arbsite.readonly_admin import ReadOnlyAdmin

from .models import KillSwitch, RiskProfile
from .selectors import recent_decisions, status_panel


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
class RiskProfileAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = RiskProfileForm
    list_display = ["name", "mode", "is_active", "auto_execute", "max_notional", "updated_at"]
    list_filter = ["mode", "is_active"]
    filter_horizontal = ["allowed_exchanges", "allowed_markets"]
    readonly_fields = ["recent_decisions"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "status": status_panel()}
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="recent decisions")
    def recent_decisions(self, profile: RiskProfile) -> str:
        """The latest opportunities on its markets: why each was refused, or the trade taken."""
        if profile.pk is None:
            return "-"
        rows = [
            (
                opportunity.opened_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(opportunity),
                opportunity.net_bps,
                opportunity.trade_state or "not taken",
                ", ".join(f"{reason}: {n}" for reason, n in opportunity.refusals.items()) or "-",
            )
            for opportunity in recent_decisions(profile)
        ]
        if not rows:
            return "No opportunities yet."
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "<table><thead><tr><th>opened</th><th>opportunity</th><th>net bps</th>"
            "<th>trade</th><th>refusals</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )


@admin.register(KillSwitch)
class KillSwitchAdmin(ReadOnlyAdmin):
    """Read-only: the switch is thrown and reset from the desk's own pages, which audit it."""

    list_display = ["is_on", "reason", "automatic", "changed_by", "changed_at"]
