"""Opportunities: one row per lifecycle of a cross-venue price difference that pays."""

from django.db import models


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=28, decimal_places=12, **kwargs)


class Opportunity(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT)
    buy_exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    sell_exchange = models.ForeignKey(
        "markets.Exchange", on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=6, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=40, blank=True)
    # The last observed cross.
    size = _money()
    buy_vwap = _money()
    sell_vwap = _money()
    gross_profit = _money()
    fees = _money()
    net_profit = _money()
    net_bps = models.DecimalField(max_digits=14, decimal_places=4)
    levels_walked = models.JSONField(default=dict)
    exchange_ts = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField()
    # Over the whole lifecycle.
    peak_net_profit = _money()
    peak_net_bps = models.DecimalField(max_digits=14, decimal_places=4)
    updates = models.PositiveIntegerField(default=0)
    # Why it was not taken: {reason: times refused}, counted, not a row per tick.
    refusals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name_plural = "opportunities"
        indexes = [
            # The opportunities page: newest first, filtered by market.
            models.Index(fields=["market", "-opened_at"], name="opp_market_opened"),
            # The dashboard and the engine's restart clean-up: open ones.
            models.Index(fields=["state", "-opened_at"], name="opp_state_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.market} buy {self.buy_exchange.slug} sell {self.sell_exchange.slug}"

    @property
    def duration(self):
        return (self.closed_at - self.opened_at) if self.closed_at else None
