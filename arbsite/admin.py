"""The audit trail in the admin (read-only), and users, roles and risk profiles re-registered to
be audited (risk profiles with the desk's live status and their recent decisions).

Importing `arbsite.audit` here also connects its receivers in every process, since the admin's
autodiscovery imports this module at start-up.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.utils.html import format_html, format_html_join

from arbsite.audit import AuditedAdminMixin, record
from arbsite.models import AuditEvent
from portfolio.admin import ReadOnlyAdmin
from risk.admin import RiskProfileAdmin
from risk.models import RiskProfile
from trading.selectors import recent_decisions, status_panel


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "action", "ip", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "at"]
    search_fields = ["username", "action", "object_repr"]
    date_hierarchy = "at"


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.unregister(RiskProfile)


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        """The admin setting someone's password: recorded once it is set (a redirect)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            record("password changed", user=request.user, request=request, obj=user)
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass


@admin.register(RiskProfile)
class AuditedRiskProfileAdmin(AuditedAdminMixin, RiskProfileAdmin):
    """The change form shows the desk's live status ("risk-status") above the profile."""

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
