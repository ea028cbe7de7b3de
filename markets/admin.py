"""Admin for exchanges and markets (Administrators edit, everyone with view permission reads)."""

from django.contrib import admin

from .models import Exchange, Listing, Market


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
