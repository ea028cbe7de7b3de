"""Risk reads: the active profile's limits as plain values for the checks."""

from risk.checks import Limits
from risk.models import RiskProfile


def limits_of(profile: RiskProfile) -> Limits:
    """`profile`'s limits, with its allowed venues and markets by slug and symbol."""
    return Limits(
        mode=profile.mode,
        auto_execute=profile.auto_execute,
        min_profit_bps=profile.min_profit_bps,
        min_profit_quote=profile.min_profit_quote,
        max_notional=profile.max_notional,
        max_position=profile.max_position,
        max_daily_loss=profile.max_daily_loss,
        max_trades_per_minute=profile.max_trades_per_minute,
        max_book_age_ms=profile.max_book_age_ms,
        max_open_imbalance=profile.max_open_imbalance,
        max_consecutive_failures=profile.max_consecutive_failures,
        allowed_venues=frozenset(profile.allowed_exchanges.values_list("slug", flat=True)),
        allowed_markets=frozenset(profile.allowed_markets.values_list("symbol", flat=True)),
    )


def load_limits(mode: str) -> Limits | None:
    """The active profile's limits for `mode`, or None when none is active."""
    profile = RiskProfile.objects.active(mode)
    return limits_of(profile) if profile is not None else None
