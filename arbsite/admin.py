"""The audit trail in the admin (read-only), and users, roles, risk profiles, exchanges, markets
and credentials re-registered to be audited (risk profiles with the desk's live status and their
recent decisions). Nobody is made superuser here, and nobody grants what they do not hold.
Their decimal inputs show plain digits (a zero minimum is 0, never 0E-8).

Importing `arbsite.audit` here also connects its receivers in every process, since the admin's
autodiscovery imports this module at start-up.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db import models
from django.db.models import Q
from django.dispatch import receiver
from django.utils.html import format_html, format_html_join
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from arbsite import twofactor
from arbsite.audit import AuditedAdminMixin, record, snapshot
from arbsite.models import AuditEvent
from markets.admin import ExchangeAdmin, ExchangeCredentialAdmin, ListingInline, MarketAdmin
from markets.models import (
    Exchange,
    ExchangeCredential,
    Listing,
    Market,
    exchange_fees_synced,
    listing_synced,
)
from markets.money import plain
from portfolio.admin import ReadOnlyAdmin
from risk.admin import RiskProfileAdmin
from risk.models import RiskProfile
from trading.selectors import recent_decisions, status_panel


class PlainDecimalInput(forms.NumberInput):
    """A decimal field's input in plain digits: the database hands back 0E-8 for a zero at eight
    places, which a browser's number input shows as is and a person misreads."""

    def format_value(self, value):
        if isinstance(value, Decimal) and value.is_finite():
            return plain(value)
        return super().format_value(value)

    def get_context(self, name, value, attrs) -> dict:
        context = super().get_context(name, value, attrs)
        # Django writes the step of eight places as "1e-8".
        widget_attrs = context["widget"]["attrs"]
        if widget_attrs.get("step") not in (None, "any"):
            widget_attrs["step"] = plain(Decimal(widget_attrs["step"]))
        return context


class PlainDecimals:
    """Every decimal field of the admin it is mixed into is typed and shown in plain digits."""

    formfield_overrides = {models.DecimalField: {"widget": PlainDecimalInput}}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "action", "ip", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "at"]
    search_fields = ["username", "action", "object_repr"]
    date_hierarchy = "at"


admin.site.unregister([User, Group, RiskProfile, Exchange, Market, ExchangeCredential])
# django-otp's own device admins (registered before this module: INSTALLED_APPS order) would
# show keys and delete devices unaudited; the user list's reset action is the one way.
admin.site.unregister([TOTPDevice, StaticDevice])


def held_permissions(user: User):
    """The permissions `user` holds, directly or through a role: all they may grant."""
    return (
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .distinct()
        .select_related("content_type")
    )


def grantable_roles(user: User):
    """The roles (groups) whose every permission `user` holds."""
    return Group.objects.exclude(
        permissions__in=Permission.objects.exclude(pk__in=held_permissions(user).values("pk"))
    )


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    """Superuser status is set only by `createsuperuser` or a shell; a superuser's account is
    changed only by a superuser; each role granted or removed is an event of its own."""

    readonly_fields = ["is_superuser"]
    actions = ["reset_second_factor"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Setting a superuser's password would make anyone who may change users a superuser.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser and db_field.name == "groups":
            kwargs["queryset"] = grantable_roles(request.user)
        if not request.user.is_superuser and db_field.name == "user_permissions":
            kwargs["queryset"] = held_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change) -> None:
        before = set(getattr(form, "_audit_before", {}).get("groups", []))
        super().save_related(request, form, formsets, change)
        after = {group.name for group in form.instance.groups.all()}
        for role in sorted(after - before):
            record(
                "role granted",
                user=request.user,
                request=request,
                obj=form.instance,
                after={"role": role},
            )
        for role in sorted(before - after):
            record(
                "role removed",
                user=request.user,
                request=request,
                obj=form.instance,
                before={"role": role},
            )

    @admin.action(
        description="Reset two-factor login (set up again at the next login)",
        permissions=["change"],
    )
    def reset_second_factor(self, request, queryset) -> None:
        for user in queryset:
            if not self.has_change_permission(request, user):
                continue
            removed = twofactor.reset(user)
            if removed:
                record(
                    "second factor reset",
                    user=request.user,
                    request=request,
                    obj=user,
                    before={"devices": removed},
                )
                self.message_user(request, f"{user}: two-factor login reset.")

    def user_change_password(self, request, id, form_url=""):
        """The admin setting someone's password: recorded once it is set (a redirect)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            record("password changed", user=request.user, request=request, obj=user)
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if not request.user.is_superuser and db_field.name == "permissions":
            kwargs["queryset"] = held_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Exchange)
class AuditedExchangeAdmin(PlainDecimals, AuditedAdminMixin, ExchangeAdmin):
    pass


@receiver(listing_synced, sender=Listing, dispatch_uid="audit_listing_synced")
def _record_listing_synced(sender, listing, before, after, user=None, request=None, **kw) -> None:
    # Inside the save's transaction: the change and its event commit or roll back together.
    record("listing synced", user=user, request=request, obj=listing, before=before, after=after)


@receiver(exchange_fees_synced, sender=Exchange, dispatch_uid="audit_exchange_fees_synced")
def _record_fees_synced(sender, exchange, sync, user=None, request=None, **kw) -> None:
    # Inside the save's transaction, as a listing's sync is.
    def fields(tier) -> dict[str, str]:
        return {"taker_fee_bps": f"{tier.taker_bps:f}", "maker_fee_bps": f"{tier.maker_bps:f}"}

    before, after = fields(sync.before), fields(sync.after)
    record("fees synced", user=user, request=request, obj=exchange, before=before, after=after)


class PlainListingInline(PlainDecimals, ListingInline):
    pass


@admin.register(Market)
class AuditedMarketAdmin(AuditedAdminMixin, MarketAdmin):
    """A listing changed, added or removed through the inline is part of its market's event."""

    inlines = [PlainListingInline]

    def audit_snapshot(self, market: Market) -> dict:
        values = snapshot(market)
        for listing in market.listings.select_related("exchange"):
            for name, value in snapshot(listing).items():
                if name not in {"exchange", "market"}:
                    values[f"listings.{listing.exchange.slug}.{name}"] = value
        return values


@admin.register(ExchangeCredential)
class AuditedExchangeCredentialAdmin(PlainDecimals, AuditedAdminMixin, ExchangeCredentialAdmin):
    """The event says which keys changed, never a value (the encrypted ones are masked too)."""


@admin.register(RiskProfile)
class AuditedRiskProfileAdmin(PlainDecimals, AuditedAdminMixin, RiskProfileAdmin):
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
                plain(opportunity.net_bps),
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
