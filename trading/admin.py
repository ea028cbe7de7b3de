"""Opportunities in the admin, read-only: the engine writes them."""

from django.contrib import admin

from portfolio.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Fill, Opportunity, Order, Trade, TradeEvent


@admin.register(Opportunity)
class OpportunityAdmin(ReadOnlyAdmin):
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


class OrderInline(ReadOnlyInline):
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
    show_change_link = True


class TradeEventInline(ReadOnlyInline):
    model = TradeEvent
    fields = ["at", "from_state", "to_state", "detail"]
    readonly_fields = fields


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ["at", "price", "amount", "fee"]
    readonly_fields = fields


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
