"""Opportunities in the admin, read-only: the engine writes them."""

from django.contrib import admin

from .models import Fill, Opportunity, Order, Trade, TradeEvent


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


class OrderInline(admin.TabularInline):
    model = Order
    fields = [
        "client_order_id",
        "exchange",
        "purpose",
        "side",
        "limit_price",
        "amount",
        "filled_amount",
        "average_price",
        "fee",
        "state",
        "venue_order_id",
        "error",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TradeEventInline(admin.TabularInline):
    model = TradeEvent
    fields = ["at", "from_state", "to_state", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class FillInline(admin.TabularInline):
    model = Fill
    fields = ["at", "price", "amount", "fee"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "opportunity",
        "mode",
        "state",
        "requested_size",
        "expected_net_profit",
        "realised_net_profit",
        "created_at",
        "closed_at",
        "failure_reason",
    ]
    list_filter = ["mode", "state"]
    date_hierarchy = "created_at"
    inlines = [OrderInline, TradeEventInline]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["client_order_id", "exchange", "side", "amount", "filled_amount", "state"]
    list_filter = ["state", "side", "purpose", "exchange"]
    inlines = [FillInline]
