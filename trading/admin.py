"""Opportunities in the admin, read-only: the engine writes them."""

from django.contrib import admin

from .models import Opportunity


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = [
        "market",
        "buy_exchange",
        "sell_exchange",
        "state",
        "opened_at",
        "closed_at",
        "size",
        "net_profit",
        "peak_net_profit",
    ]
    list_filter = ["state", "market", "buy_exchange", "sell_exchange"]
    date_hierarchy = "opened_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
