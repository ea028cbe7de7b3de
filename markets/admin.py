"""Admin for exchanges and markets (Administrators edit, everyone with view permission reads)."""

from django import forms
from django.contrib import admin

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

    def save(self, commit: bool = True):
        self.instance.set_keys(
            api_key=self.cleaned_data["api_key"],
            secret=self.cleaned_data["secret"],
            passphrase=self.cleaned_data["passphrase"],
        )
        return super().save(commit=commit)


@admin.register(ExchangeCredential)
class ExchangeCredentialAdmin(admin.ModelAdmin):
    form = ExchangeCredentialForm
    list_display = ["exchange", "updated_at"]
