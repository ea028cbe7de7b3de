"""Accounts per venue and mode, their balances and the append-only ledger that moves them."""

from django.db import models
from django.utils import timezone


class Mode(models.TextChoices):
    """Paper money (simulated fills) or live money (real orders on the venue)."""

    PAPER = "paper", "Paper"
    LIVE = "live", "Live"


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=28, decimal_places=12, **kwargs)


class Account(models.Model):
    """The desk's money on one venue, in one mode (paper money is funded by deposits)."""

    exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.PAPER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["mode", "exchange__slug"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "mode"], name="one_account_per_venue_mode")
        ]

    def __str__(self) -> str:
        return f"{self.exchange.slug} ({self.mode})"


class Balance(models.Model):
    """The amount of one asset in one account; changed only by `portfolio.services.post_entries`."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="balances")
    asset = models.CharField(max_length=12)
    amount = _money(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account", "asset"]
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="one_balance_per_asset"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.asset} on {self.account}"


class LedgerEntry(models.Model):
    """One signed movement of one asset in one account; rows are never changed or deleted."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        FILL = "fill", "Fill"
        FEE = "fee", "Fee"
        ADJUSTMENT = "adjustment", "Adjustment"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    asset = models.CharField(max_length=12)
    amount = _money()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    trade = models.ForeignKey(
        "trading.Trade", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    order = models.ForeignKey(
        "trading.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            # An account's statement and the balance reconciliation: one asset, in time order;
            # with the amount, the inventory chart sums a period from the index alone.
            models.Index(
                fields=["account", "asset", "created_at"],
                include=["amount"],
                name="ledger_account_asset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.asset} on {self.account}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Ledger entries are append-only; post a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger entries are append-only; post a correcting entry instead.")


class Reconciliation(models.Model):
    """One comparison of a live account's holdings at its venue with its ledger: a line per
    asset (exact decimal text), or why the venue could not be asked."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="reconciliations")
    at = models.DateTimeField(default=timezone.now)
    error = models.CharField(max_length=200, blank=True)
    # [{"asset": "USD", "venue": "10012.40", "ledger": "10000.00"}, ...], by asset.
    lines = models.JSONField(default=list, blank=True)
    # Orders the venue holds open that no trade of the desk's owns: [{"id", "symbol", "side",
    # "amount", "price"}], shown and alerted as external orders.
    external_orders = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            # The latest reconciliation of each account: the portfolio page, the live switch.
            models.Index(fields=["account", "-at"], name="reconciliation_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.account} reconciled at {self.at:%Y-%m-%d %H:%M:%S}"
