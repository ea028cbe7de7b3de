"""Risk decisions that read the database: the execution task's re-check before it trades."""

from risk.models import RiskProfile


def active_profile(mode: str) -> RiskProfile | None:
    return RiskProfile.objects.filter(mode=mode, is_active=True).first()


def execution_refusals(opportunity, *, mode: str) -> list[str]:
    """Return why `opportunity` may not be executed now in `mode`; [] means it may."""
    profile = active_profile(mode)
    if profile is None:
        return [f"no active {mode} risk profile"]
    return []
