"""Admin for exchanges and markets (Administrators edit, everyone with view permission reads)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .models import Exchange, ExchangeCredential, Listing, Market
from .venues.fees import sync_fees
from .venues.readiness import FAIL, INFO, PASS, WARN, readiness
from .venues.rules import VenueUnavailable, apply_rules, reference_rules

READINESS_LEVELS = {
    PASS: messages.SUCCESS,
    INFO: messages.INFO,
    WARN: messages.WARNING,
    FAIL: messages.ERROR,
}


class ListingInline(admin.TabularInline):
    model = Listing
    extra = 0
    # Read from the venue by the trading-rule sync (`sync_listings`), not typed in.
    readonly_fields = ["min_size", "halted_reason"]


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "taker_fee_bps",
        "maker_fee_bps",
        "fees_synced_at",
        "enabled",
        "ws_url",
    ]
    list_filter = ["enabled"]
    readonly_fields = ["fees_synced_at"]
    actions = ["sync_trading_rules", "sync_venue_fees", "check_live_readiness"]

    @admin.action(description="Sync trading rules from the venue", permissions=["change"])
    def sync_trading_rules(self, request, queryset) -> None:
        for exchange in queryset:
            try:
                rules = reference_rules(exchange)
                report = apply_rules(
                    exchange, rules, read_at=timezone.now(), user=request.user, request=request
                )
            except VenueUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            for line in report.changed + report.unknown:
                self.message_user(request, line, messages.INFO)
            self.message_user(request, report.summary(), messages.SUCCESS)

    @admin.action(
        description="Sync fees from the venue (the account's tier)", permissions=["change"]
    )
    def sync_venue_fees(self, request, queryset) -> None:
        for exchange in queryset:
            try:
                result = sync_fees(exchange, user=request.user, request=request)
            except VenueUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, result.summary(), messages.SUCCESS)

    # Run with the desk's keys against the venue: for those who may manage the keys.
    @admin.action(description="Check live readiness", permissions=["change"])
    def check_live_readiness(self, request, queryset) -> None:
        for exchange in queryset:
            for check in readiness(exchange):
                self.message_user(request, str(check), READINESS_LEVELS[check.status])


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ["symbol", "base", "quote"]
    inlines = [ListingInline]


class ExchangeCredentialForm(forms.ModelForm):
    """Keys are write-only: the form never shows a stored value back. Changing a credential, the
    keys left blank stay as stored (to write an override without typing them again); new keys
    drop the old key's withdrawal override unless the same change writes one for them.

    The key fields are named after nothing on the credential: the admin renders a field it may
    not edit by reading that name off the object, and `api_key` there is the decrypted key."""

    KEY_FIELDS = ("new_api_key", "new_secret", "new_passphrase")

    new_api_key = forms.CharField(label="API key", widget=forms.PasswordInput(render_value=False))
    new_secret = forms.CharField(label="Secret", widget=forms.PasswordInput(render_value=False))
    new_passphrase = forms.CharField(
        label="Passphrase", widget=forms.PasswordInput(render_value=False), required=False
    )

    class Meta:
        model = ExchangeCredential
        fields = ["exchange", "withdrawal_override"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for name in ("new_api_key", "new_secret"):
                self.fields[name].required = False
                self.fields[name].help_text = "Leave blank to keep the stored key."

    def clean(self) -> dict:
        """Encrypt the keys now, so a missing or bad CREDENTIALS_KEY is a form error, not a 500."""
        cleaned = super().clean()
        given = [name for name in ("new_api_key", "new_secret") if cleaned.get(name)]
        if len(given) == 1:
            raise forms.ValidationError("Give the API key and the secret together, or neither.")
        if len(given) == 2:
            try:
                self.instance.set_keys(
                    api_key=cleaned["new_api_key"],
                    secret=cleaned["new_secret"],
                    passphrase=cleaned.get("new_passphrase", ""),
                )
            except ImproperlyConfigured as exc:
                raise forms.ValidationError(str(exc)) from exc
            if "withdrawal_override" not in self.changed_data:
                # The override shown was the replaced key's: it is not carried to the new one.
                cleaned["withdrawal_override"] = ""
        return cleaned


@admin.register(ExchangeCredential)
class ExchangeCredentialAdmin(admin.ModelAdmin):
    form = ExchangeCredentialForm
    list_display = ["exchange", "updated_at", "withdrawal_override_by"]
    readonly_fields = ["withdrawal_override_by", "withdrawal_override_at"]

    def get_fields(self, request, obj=None) -> list[str]:
        """A credential's view-only page has no keys to type, so it lists no key field at all."""
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return [name for name in fields if name not in ExchangeCredentialForm.KEY_FIELDS]
        return fields

    def save_model(self, request, obj, form, change) -> None:
        if "withdrawal_override" in form.changed_data:
            # Signed by whoever wrote it, now.
            obj.override_withdrawals(obj.withdrawal_override, by=request.user.get_username())
        super().save_model(request, obj, form, change)
