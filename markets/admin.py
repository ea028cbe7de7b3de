"""Admin for exchanges and markets (Administrators edit, everyone with view permission reads)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured

from .models import Exchange, ExchangeCredential, Listing, Market


class ListingInline(admin.TabularInline):
    model = Listing
    extra = 0


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "taker_fee_bps", "maker_fee_bps", "enabled", "ws_url"]
    list_filter = ["enabled"]


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ["symbol", "base", "quote"]
    inlines = [ListingInline]


class ExchangeCredentialForm(forms.ModelForm):
    """Keys are write-only: the form never shows a stored value back."""

    api_key = forms.CharField(widget=forms.PasswordInput(render_value=False))
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False))
    passphrase = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False)

    class Meta:
        model = ExchangeCredential
        fields = ["exchange"]

    def clean(self) -> dict:
        """Encrypt the keys now, so a missing or bad CREDENTIALS_KEY is a form error, not a 500."""
        cleaned = super().clean()
        if {"api_key", "secret"} <= cleaned.keys():
            try:
                self.instance.set_keys(
                    api_key=cleaned["api_key"],
                    secret=cleaned["secret"],
                    passphrase=cleaned.get("passphrase", ""),
                )
            except ImproperlyConfigured as exc:
                raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(ExchangeCredential)
class ExchangeCredentialAdmin(admin.ModelAdmin):
    form = ExchangeCredentialForm
    list_display = ["exchange", "updated_at"]
