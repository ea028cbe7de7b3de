"""Risk profiles (the limits a risk manager sets, one active per mode), the kill switch, and the
venues paused for slow order acknowledgements."""

from collections.abc import Container
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from markets import notices
from portfolio.models import Mode
from portfolio.reconciliation import unreconciled


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=24, decimal_places=8, **kwargs)


def _tolerances_error(tolerances: object) -> str:
    """Why `tolerances` is not {ASSET: non-negative decimal text}, or ""."""
    if not isinstance(tolerances, dict):
        return 'Give an object of asset: tolerance, e.g. {"USD": "0.01"}.'
    for asset, value in tolerances.items():
        if not (isinstance(asset, str) and asset.isalnum() and asset.isupper()):
            return f"{asset!r} is not an asset code (capitals and digits, e.g. USD)."
        try:
            amount = Decimal(str(value)) if isinstance(value, str | int) else None
        except ArithmeticError:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            return f"{asset}: {value!r} is not a decimal of zero or more (write it as text)."
    return ""


def execution_mode_of(active_modes: Container[str]) -> str:
    """The mode the desk executes in, of the modes that have an active profile: live while a
    live profile is active, paper otherwise."""
    return Mode.LIVE if Mode.LIVE in active_modes else Mode.PAPER


class RiskProfileQuerySet(models.QuerySet):
    def active(self, mode: str) -> "RiskProfile | None":
        """The active profile for `mode`: the one answer every process uses (one per mode)."""
        return self.filter(mode=mode, is_active=True).first()

    def actives(self) -> dict[str, "RiskProfile"]:
        """The active profile of each mode that has one, in one query (`active` of each)."""
        return {profile.mode: profile for profile in self.filter(is_active=True)}

    def execution_mode(self) -> str:
        """The mode the desk executes in (`execution_mode_of`), in one query."""
        return execution_mode_of(set(self.filter(is_active=True).values_list("mode", flat=True)))


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
    max_lag_ms = models.PositiveIntegerField(
        "maximum lag behind the venue (ms)",
        default=1000,
        help_text="A book whose last change reached the desk this much later than the venue's "
        "clock says (beyond its usual delay) takes part in no cross, and counts as too old.",
    )
    max_hedge_slippage_bps = models.DecimalField(
        "maximum hedge slippage (bps)", max_digits=10, decimal_places=3, default=Decimal(30)
    )
    max_open_imbalance = _money(
        verbose_name="maximum open imbalance (quote)", default=Decimal(2000)
    )
    max_consecutive_failures = models.PositiveIntegerField(
        "maximum consecutive failed or hedged trades",
        default=3,
        help_text="The kill switch trips when this many trades in a row fail or need a hedge.",
    )
    drift_tolerances = models.JSONField(
        "reconciliation tolerance per asset",
        default=dict,
        blank=True,
        help_text="How far a live account's holding at its venue may differ from its ledger, in "
        'units of the asset, e.g. {"USD": "0.01", "BTC": "0.00000001"}; an asset not named must '
        "match exactly. Beyond it the kill switch trips.",
    )
    max_ack_p99_ms = models.PositiveIntegerField(
        "maximum order acknowledgement p99 (ms)",
        default=0,
        help_text="Automatic execution pauses on a venue whose p99 time to answer an order, over "
        "its acknowledgement window of newest orders, is above this, and resumes once it is not; "
        "0: off.",
    )
    ack_window = models.PositiveIntegerField(
        "acknowledgement window (orders)",
        default=100,
        help_text="How many of each venue's newest orders its p50 and p99 are taken over.",
    )
    ack_retry_after_s = models.PositiveIntegerField(
        "retry a paused venue after (s)",
        default=300,
        help_text="How long automatic execution stays paused on a venue slow to acknowledge "
        "orders before it is tried again, judged then only on its orders after the retry (a "
        "paused venue gets no new automatic orders to show it is fast again); 0: it stays "
        "paused until its figures recover.",
    )
    allowed_exchanges = models.ManyToManyField("markets.Exchange", blank=True)
    allowed_markets = models.ManyToManyField("markets.Market", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RiskProfileQuerySet.as_manager()

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
            "min_profit_bps",
            "max_hedge_slippage_bps",
        ):
            value = getattr(self, field)
            if value is not None and value < 0:
                label = self._meta.get_field(field).verbose_name
                errors[field] = f"The {label} cannot be below zero."
        if self.max_notional is not None and self.max_notional == 0:
            errors["max_notional"] = "The maximum notional must be above zero to trade."
        tolerance_error = _tolerances_error(self.drift_tolerances)
        if tolerance_error:
            errors["drift_tolerances"] = tolerance_error
        if self.ack_window == 0:
            errors["ack_window"] = "The window must hold at least one order."
        if self.max_consecutive_failures == 0:
            # Zero would trip the kill switch before the first trade.
            errors["max_consecutive_failures"] = "Allow at least one failed or hedged trade."
        if self.is_active and self.mode:
            others = RiskProfile.objects.filter(mode=self.mode, is_active=True).exclude(pk=self.pk)
            if others.exists():
                errors["is_active"] = (
                    f"Another {self.get_mode_display().lower()} profile is already active "
                    f"({others.first().name}); deactivate it first."
                )
        if errors:
            raise ValidationError(errors)

    def drift_tolerance(self, asset: str) -> Decimal:
        """How far `asset` may drift from the ledger (0: exactly)."""
        return Decimal((self.drift_tolerances or {}).get(asset, 0))

    def set_auto_execute(self, on: bool) -> bool:
        """Switch automatic execution; False if it already was so (nothing changed)."""
        changed = (
            RiskProfile.objects.filter(pk=self.pk)
            .exclude(auto_execute=on)
            .update(auto_execute=on, updated_at=timezone.now())
        )
        self.auto_execute = on
        return bool(changed)

    def clean_allowed(self, exchanges: list, markets: list) -> None:
        """Validate the many-to-many choices, which clean() cannot see before saving."""
        if self.is_active and not exchanges:
            raise ValidationError({"allowed_exchanges": "An active profile must allow a venue."})
        if self.is_active and not markets:
            raise ValidationError({"allowed_markets": "An active profile must allow a market."})
        switching_on = self.is_active and self.auto_execute and not self._executing_live()
        reasons = self.not_reconciled(exchanges) if switching_on else []
        if reasons:
            raise ValidationError(
                {"is_active": f"Automatic live execution cannot start: {'; '.join(reasons)}."}
            )

    def not_reconciled(self, exchanges) -> list[str]:
        """Why automatic live execution on `exchanges` may not run under this profile: a live
        account whose last reconciliation failed, is too old or drifted past a tolerance."""
        if self.mode != Mode.LIVE:
            return []
        within = timedelta(seconds=settings.RECONCILIATION_MAX_AGE_S)
        return unreconciled(exchanges, within=within, tolerance=self.drift_tolerance)

    def _executing_live(self) -> bool:
        """Whether this profile, as saved, already executes live automatically."""
        saved = RiskProfile.objects.filter(pk=self.pk, mode=Mode.LIVE, is_active=True)
        return self.pk is not None and saved.filter(auto_execute=True).exists()


class KillSwitch(models.Model):
    """The desk-wide stop: one row (pk 1); while it is on nothing new executes, in any mode."""

    SINGLETON_PK = 1

    is_on = models.BooleanField("on", default=False)
    reason = models.CharField(max_length=200, blank=True)
    automatic = models.BooleanField(default=False, help_text="Tripped by the desk itself.")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "kill switch"
        verbose_name_plural = "kill switch"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return "on" if self.is_on else "off"

    @classmethod
    def current(cls) -> "KillSwitch":
        switch, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return switch

    @classmethod
    def throw(cls, *, reason: str, user=None, automatic: bool = False) -> bool:
        """Turn it on; False if it already was (so one incident is recorded and alerted once)."""
        cls.current()
        return bool(
            cls.objects.filter(pk=cls.SINGLETON_PK, is_on=False).update(
                is_on=True,
                reason=reason[:200],
                automatic=automatic,
                changed_by=user,
                changed_at=timezone.now(),
            )
        )

    @classmethod
    def reset(cls, *, user) -> bool:
        """Turn it off; False if it already was."""
        cls.current()
        return bool(
            cls.objects.filter(pk=cls.SINGLETON_PK, is_on=True).update(
                is_on=False, reason="", automatic=False, changed_by=user, changed_at=timezone.now()
            )
        )


class VenuePause(models.Model):
    """Automatic execution paused on one venue in one mode, because its order acknowledgement
    p99 went above the profile's limit; open until `resumed_at`. One row per incident."""

    exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=5, choices=Mode.choices)
    p99_ms = models.FloatField("p99 when paused (ms)")
    limit_ms = models.PositiveIntegerField("limit (ms)")
    orders = models.PositiveIntegerField("orders in the window")
    paused_at = models.DateTimeField(default=timezone.now)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_p99_ms = models.FloatField("p99 when resumed (ms)", null=True, blank=True)
    # Resumed because the profile's retry time passed, not because its figures recovered.
    retried = models.BooleanField("resumed to retry", default=False)

    class Meta:
        ordering = ["-paused_at", "-id"]
        constraints = [
            # pause() relies on it: a second writer's pause of the same venue fails, not doubles.
            models.UniqueConstraint(
                fields=["exchange", "mode"],
                condition=models.Q(resumed_at__isnull=True),
                name="one_open_pause_per_venue_mode",
            ),
        ]

    def __str__(self) -> str:
        state = "resumed" if self.resumed_at else "paused"
        return f"{self.exchange_id} {self.mode} {state}: p99 {self.p99_ms:.0f} > {self.limit_ms} ms"

    @classmethod
    def paused(cls, mode: str) -> models.QuerySet["VenuePause"]:
        """The pauses open now in `mode`."""
        return cls.objects.filter(mode=mode, resumed_at__isnull=True)

    @classmethod
    def last_resumed(cls, mode: str) -> dict[int, datetime]:
        """When each venue's latest pause in `mode` ended, by exchange id: its acknowledgement
        window starts again there."""
        rows = cls.objects.filter(mode=mode, resumed_at__isnull=False).values("exchange_id")
        return dict(rows.annotate(at=Max("resumed_at")).values_list("exchange_id", "at"))

    @classmethod
    def pause(cls, *, exchange_id: int, mode: str, p99_ms: float, limit_ms: int, orders: int):
        """Open a pause; None if the venue already is paused (another process won)."""
        try:
            with transaction.atomic():
                pause = cls.objects.create(
                    exchange_id=exchange_id,
                    mode=mode,
                    p99_ms=p99_ms,
                    limit_ms=limit_ms,
                    orders=orders,
                )
        except IntegrityError:
            return None
        notices.publish(notices.HEALTH)
        return pause

    def resume(self, *, p99_ms: float | None, retried: bool = False) -> bool:
        """Close this pause (`retried`: because its time passed); False if it already was."""
        now = timezone.now()
        won = VenuePause.objects.filter(pk=self.pk, resumed_at__isnull=True).update(
            resumed_at=now, resumed_p99_ms=p99_ms, retried=retried
        )
        if won:
            self.resumed_at, self.resumed_p99_ms, self.retried = now, p99_ms, retried
            notices.publish(notices.HEALTH)
        return bool(won)
