"""Accounts, balances and the ledger in the admin, read-only: only the services write them."""

from django.contrib import admin

from arbsite.readonly_admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Account, Balance, LedgerEntry


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
