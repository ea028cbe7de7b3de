"""Risk writes: the kill switch, thrown by a person or tripped by the desk, and automatic execution.

Each change is one transaction that sends `risk.signals.desk_changed` (the audit trail records
it there) and tells the pages once it commits.
"""

from django.db import models, transaction
from django.http import HttpRequest

from markets import notices
from portfolio.models import Mode
from risk import alerts
from risk.models import KillSwitch, RiskProfile
from risk.signals import desk_changed


def throw_kill_switch(*, reason: str, user, request: HttpRequest | None = None) -> bool:
    """A person stops the desk; False if it was already on (then nothing is recorded)."""
    with transaction.atomic():
        if not KillSwitch.throw(reason=reason, user=user):
            return False
        _changed(
            "kill switch thrown",
            obj=KillSwitch.current(),
            before={"is_on": False},
            after={"is_on": True, "reason": reason},
            user=user,
            request=request,
        )
        alerts.kill_switch_thrown(reason, by=user.get_username())
    return True


def trip_kill_switch(*, reason: str) -> bool:
    """The desk stops itself; False if it was already on (one incident, one event, one alert)."""
    with transaction.atomic():
        if not KillSwitch.throw(reason=reason, automatic=True):
            return False
        _changed(
            "kill switch tripped",
            obj=KillSwitch.current(),
            before={"is_on": False},
            after={"is_on": True, "reason": reason},
            username="desk",
        )
        alerts.kill_switch_thrown(reason, by="tripped automatically")
    return True


def reset_kill_switch(*, user, request: HttpRequest | None = None) -> bool:
    """A person lets the desk trade again; False if it was already off."""
    with transaction.atomic():
        before = KillSwitch.current()
        if not KillSwitch.reset(user=user):
            return False
        _changed(
            "kill switch reset",
            obj=before,
            before={"is_on": True, "reason": before.reason},
            after={"is_on": False},
            user=user,
            request=request,
        )
    return True


class LiveNotReady(Exception):
    """Automatic live execution may not start: the venues are not known to match the ledger."""


def set_auto_execution(
    *, on: bool, user, request: HttpRequest | None = None, mode: str = Mode.PAPER
) -> bool:
    """Switch the active profile's automatic execution; False if none is active or no change.
    Switching it on in live mode raises LiveNotReady while a venue is not reconciled."""
    with transaction.atomic():
        profile = RiskProfile.objects.active(mode)
        if profile is None:
            return False
        reasons = profile.not_reconciled(profile.allowed_exchanges.all()) if on else []
        if reasons and not profile.auto_execute:
            raise LiveNotReady(f"Automatic live execution cannot start: {'; '.join(reasons)}.")
        if not profile.set_auto_execute(on):
            return False
        _changed(
            f"automatic execution {'on' if on else 'off'}",
            obj=profile,
            before={"auto_execute": not on},
            after={"auto_execute": on},
            user=user,
            request=request,
        )
    return True


def _changed(
    action: str,
    *,
    obj: models.Model,
    before: dict,
    after: dict,
    user=None,
    request: HttpRequest | None = None,
    username: str = "",
) -> None:
    """Inside the change's transaction: tell its receivers now and the pages after commit."""
    desk_changed.send(
        sender=type(obj),
        action=action,
        user=user,
        request=request,
        obj=obj,
        before=before,
        after=after,
        username=username,
    )
    notices.publish(notices.HEALTH)
    notices.publish(notices.RISK_STATUS)
