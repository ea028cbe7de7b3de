"""Accounts, balances and the ledger in the admin, read-only: only the services write them.

Its read-only bases are here, in the lowest app that needs them: trading's, risk's and the audit
trail's admin use them too.
"""

from django.contrib import admin

from .models import Account, Balance, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records only the app writes (ledger, trades, audit): readable, never edited."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BalanceInline(ReadOnlyInline):
    model = Balance
    fields = ["asset", "amount", "updated_at"]
    readonly_fields = fields


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["exchange", "mode", "created_at"]
    list_filter = ["mode", "exchange"]
    inlines = [BalanceInline]


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["account", "asset", "amount", "updated_at"]
    list_filter = ["account__mode", "asset"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "asset", "amount", "kind", "trade", "order", "note"]
    list_filter = ["kind", "account__mode", "asset"]
    date_hierarchy = "created_at"
    list_select_related = ["account__exchange", "trade", "order"]
