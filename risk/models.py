"""Risk profiles: the limits a risk manager sets, one active profile per mode."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models


class Mode(models.TextChoices):
    PAPER = "paper", "Paper"
    LIVE = "live", "Live"


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=24, decimal_places=8, **kwargs)


class RiskProfile(models.Model):
    name = models.CharField(max_length=80, unique=True)
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.PAPER)
    is_active = models.BooleanField("active", default=False)
    auto_execute = models.BooleanField("automatic execution", default=False)
    min_profit_bps = models.DecimalField(
        "minimum net profit (bps)", max_digits=10, decimal_places=3, default=Decimal(5)
    )
    min_profit_quote = _money(verbose_name="minimum net profit (quote)", default=Decimal(0))
    max_notional = _money(verbose_name="maximum notional per trade (quote)", default=Decimal(1000))
    max_position = _money(
        verbose_name="maximum position per asset per venue (quote)", default=Decimal(50_000)
    )
    max_daily_loss = _money(
        verbose_name="maximum daily realised loss (quote)", default=Decimal(500)
    )
    max_trades_per_minute = models.PositiveIntegerField(default=10)
    max_book_age_ms = models.PositiveIntegerField("maximum book age (ms)", default=2000)
    max_hedge_slippage_bps = models.DecimalField(
        "maximum hedge slippage (bps)", max_digits=10, decimal_places=3, default=Decimal(30)
    )
    max_open_imbalance = _money(
        verbose_name="maximum open imbalance (quote)", default=Decimal(2000)
    )
    allowed_exchanges = models.ManyToManyField("markets.Exchange", blank=True)
    allowed_markets = models.ManyToManyField("markets.Market", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["mode", "name"]
        constraints = [
            # The engine and the workers read "the active profile for this mode".
            models.UniqueConstraint(
                fields=["mode"], condition=models.Q(is_active=True), name="one_active_per_mode"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_mode_display()})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field in (
            "max_daily_loss",
            "max_notional",
            "max_position",
            "max_open_imbalance",
            "min_profit_quote",
            "max_hedge_slippage_bps",
        ):
            value = getattr(self, field)
            if value is not None and value < 0:
                label = self._meta.get_field(field).verbose_name
                errors[field] = f"The {label} cannot be below zero."
        if self.max_notional is not None and self.max_notional == 0:
            errors["max_notional"] = "The maximum notional must be above zero to trade."
        if self.is_active and self.mode:
            others = RiskProfile.objects.filter(mode=self.mode, is_active=True).exclude(pk=self.pk)
            if others.exists():
                errors["is_active"] = (
                    f"Another {self.get_mode_display().lower()} profile is already active "
                    f"({others.first().name}); deactivate it first."
                )
        if errors:
            raise ValidationError(errors)

    def clean_allowed(self, exchanges: list, markets: list) -> None:
        """Validate the many-to-many choices, which clean() cannot see before saving."""
        if self.is_active and not exchanges:
            raise ValidationError({"allowed_exchanges": "An active profile must allow a venue."})
        if self.is_active and not markets:
            raise ValidationError({"allowed_markets": "An active profile must allow a market."})
