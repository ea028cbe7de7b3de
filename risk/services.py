"""Risk decisions that touch the database: the execution re-check, refusals, the kill switch.

The engine reloads `load_limits` and `load_state` every few seconds and checks each tick with
`engine_refusals` (pure); the execution task calls `execution_refusals` against the database.
"""

from collections import Counter
from collections.abc import Iterable, Mapping

from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest

from arbsite import audit
from markets import notices
from portfolio.models import Mode
from risk import alerts, checks
from risk.checks import Candidate, DeskState, Limits
from risk.models import KillSwitch, RiskProfile
from risk.selectors import candidate_of, desk_state, limits_of
from trading.models import Opportunity

KILL_SWITCH_KEY = "risk:kill-switch"
# How long another process may act on a stale switch; a change also deletes the key.
KILL_SWITCH_TTL_S = 2


def load_limits(mode: str) -> Limits | None:
    """The active profile's limits for `mode` as plain values, or None when none is active."""
    profile = RiskProfile.objects.active(mode)
    return limits_of(profile) if profile is not None else None


def load_state(mode: str) -> DeskState:
    """The desk's state for the engine's periodic reload."""
    return desk_state(mode)


def engine_refusals(candidate: Candidate, *, limits: Limits | None, state: DeskState) -> list[str]:
    """The engine's per-tick check before it enqueues an automatic execution; no I/O."""
    if limits is None:
        return ["no active risk profile"]
    return checks.refusals(candidate, limits, state, automatic=True)


def execution_refusals(
    opportunity: Opportunity, *, mode: str, automatic: bool = False
) -> list[str]:
    """Return why `opportunity` may not be executed now in `mode`; [] means it may.

    Reads everything fresh from the database, so a kill switch or an admin change made after
    the task was queued still stops it; trips the kill switch when the desk is past a limit.
    """
    profile = RiskProfile.objects.active(mode)
    if profile is None:
        return [f"no active {mode} risk profile"]
    limits = limits_of(profile)
    state = desk_state(mode)
    tripped = checks.trip_reasons(limits, state)
    if tripped and not state.kill_switch_on:
        trip_kill_switch(reason=", ".join(tripped))
    return checks.refusals(candidate_of(opportunity), limits, state, automatic=automatic)


def record_refusals(opportunity_id: int, reasons: Iterable[str]) -> None:
    """Add one to each reason's counter on the opportunity in a single UPDATE."""
    counts = Counter(reasons)
    if not counts:
        return
    table = Opportunity._meta.db_table
    if connection.vendor == "postgresql":
        pairs = ", ".join(
            ["%s::text, COALESCE((refusals->>%s::text)::bigint, 0) + %s::bigint"] * len(counts)
        )
        sql = f"UPDATE {table} SET refusals = refusals || jsonb_build_object({pairs}) WHERE id = %s"
        params = [value for reason, n in counts.items() for value in (reason, reason, n)]
    else:
        pairs = ", ".join(["%s, COALESCE(json_extract(refusals, %s), 0) + %s"] * len(counts))
        sql = f"UPDATE {table} SET refusals = json_set(refusals, {pairs}) WHERE id = %s"
        params = [v for reason, n in counts.items() for v in (_path(reason), _path(reason), n)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, opportunity_id])
    for reason in counts.keys() & checks.DESK_LIMITS:
        alerts.limit_hit(reason, str(opportunity_id))


def _path(reason: str) -> str:
    """A SQLite JSON path naming one key, quoted since reasons hold spaces and brackets."""
    return '$."' + reason.replace('"', "") + '"'


def kill_switch_on() -> bool:
    """Whether the switch is on, from the shared cache (at most KILL_SWITCH_TTL_S old).

    Cheap enough for the engine to poll every second between its state reloads; the execution
    task does not rely on it and reads the row itself.
    """
    value = cache.get(KILL_SWITCH_KEY)
    if value is None:
        value = KillSwitch.current().is_on
        cache.set(KILL_SWITCH_KEY, value, timeout=KILL_SWITCH_TTL_S)
    return bool(value)


def _desk_changed() -> None:
    """After commit: drop the cached switch so every process reads it anew, and push the pages."""
    transaction.on_commit(lambda: cache.delete(KILL_SWITCH_KEY))
    notices.publish(notices.HEALTH)
    notices.publish(notices.RISK_STATUS)


def throw_kill_switch(*, reason: str, user, request: HttpRequest | None = None) -> bool:
    """A person stops the desk; False if it was already on (then nothing is recorded)."""
    with transaction.atomic():
        if not KillSwitch.throw(reason=reason, user=user):
            return False
        audit.record(
            "kill switch thrown",
            user=user,
            request=request,
            obj=KillSwitch.current(),
            before={"is_on": False},
            after={"is_on": True, "reason": reason},
        )
        _desk_changed()
        alerts.kill_switch_thrown(reason, by=user.get_username())
    return True


def trip_kill_switch(*, reason: str) -> bool:
    """The desk stops itself; False if it was already on (one incident, one event, one alert)."""
    with transaction.atomic():
        if not KillSwitch.throw(reason=reason, automatic=True):
            return False
        audit.record(
            "kill switch tripped",
            obj=KillSwitch.current(),
            before={"is_on": False},
            after={"is_on": True, "reason": reason},
            username="desk",
        )
        _desk_changed()
        alerts.kill_switch_thrown(reason, by="tripped automatically")
    return True


def reset_kill_switch(*, user, request: HttpRequest | None = None) -> bool:
    """A person lets the desk trade again; False if it was already off."""
    with transaction.atomic():
        before = KillSwitch.current()
        if not KillSwitch.reset(user=user):
            return False
        audit.record(
            "kill switch reset",
            user=user,
            request=request,
            obj=before,
            before={"is_on": True, "reason": before.reason},
            after={"is_on": False},
        )
        _desk_changed()
    return True


def set_auto_execution(
    *, on: bool, user, request: HttpRequest | None = None, mode: str = Mode.PAPER
) -> bool:
    """Switch the active profile's automatic execution; False if none is active or no change."""
    with transaction.atomic():
        profile = RiskProfile.objects.active(mode)
        if profile is None or not profile.set_auto_execute(on):
            return False
        audit.record(
            f"automatic execution {'on' if on else 'off'}",
            user=user,
            request=request,
            obj=profile,
            before={"auto_execute": not on},
            after={"auto_execute": on},
        )
        _desk_changed()
    return True


def trip_if(*, mode: str, feed_ages_ms: Mapping[str, float] | None = None) -> list[str]:
    """Trip the kill switch if the desk in `mode` is past a limit; return the reasons found.

    For the engine (with each venue's feed age) and the execution task (after each trade).
    """
    limits = load_limits(mode)
    if limits is None:
        return []
    ages = feed_ages_ms or {}
    for venue in checks.stale_venues(limits, ages):
        alerts.feed_down(venue, ages[venue])
    reasons = checks.trip_reasons(limits, desk_state(mode), feed_ages_ms=ages)
    if reasons:
        trip_kill_switch(reason=", ".join(reasons))
    return reasons
