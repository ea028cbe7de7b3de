"""The desk state the risk checks need, read from trades, and the risk re-checks around them.

The engine reloads `load_limits` and `desk_state` every few seconds and checks each tick with
`engine_refusals` (no I/O); the execution task calls `execution_refusals` against the database.
Both the engine's periodic `trip_if` and every execution first pause (or resume) automatic
execution on the venues slow (or no longer slow) to acknowledge orders: `update_ack_pauses`.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from markets.bookcache import book_age_s, read_book
from markets.money import ZERO
from portfolio.selectors import exposure
from risk import alerts, checks
from risk.checks import Candidate, DeskState, Limits
from risk.models import KillSwitch, RiskProfile, VenuePause
from risk.selectors import limits_of, load_limits
from risk.services import trip_kill_switch
from trading.models import Opportunity, Order, Trade
from trading.selectors import open_imbalances, realised_pnl_today

# Automatic live execution waits for both venues to match the ledger (RiskProfile.not_reconciled).
NOT_RECONCILED = "venue not reconciled"
# Trades still in flight or refused before any order: neither a success nor a failure.
_UNDECIDED = [Trade.State.PENDING, Trade.State.SUBMITTED, Trade.State.REJECTED]


def desk_state(mode: str) -> DeskState:
    """The desk's state in `mode` read from the database (and the book cache for prices)."""
    switch = KillSwitch.current()
    rows = exposure(mode=mode, imbalances=open_imbalances(mode=mode))
    return DeskState(
        kill_switch_on=switch.is_on,
        realised_pnl_today=sum(realised_pnl_today(mode=mode).values(), ZERO),
        trades_last_minute=Trade.objects.filter(
            mode=mode, created_at__gte=timezone.now() - timedelta(minutes=1)
        ).count(),
        positions={(r.venue, r.asset): r.value for r in rows if r.value is not None},
        # Valued at the mid; an imbalance on a venue with no fresh book cannot be valued here.
        open_imbalance=sum((abs(r.imbalance) * r.mid for r in rows if r.mid is not None), ZERO),
        consecutive_failures=consecutive_failures(mode, since=switch.changed_at),
        paused_venues=frozenset(VenuePause.paused(mode).values_list("exchange__slug", flat=True)),
    )


def update_ack_pauses(mode: str) -> list[VenuePause]:
    """Pause automatic execution in `mode` on each venue whose order acknowledgement p99 over
    its window is above the active profile's limit, resume each paused one back within it (or
    when the limit is off); return the pauses open now.

    The figures move only with new orders on the venue: a Trader's manual executions and the
    hedges and unwinds still go to a paused venue, and time it. So a pause older than the
    profile's `ack_retry_after_s` resumes anyway, to retry; each resume starts the venue's
    window again, so the slow orders that paused it do not pause it again at once.
    """
    profile = RiskProfile.objects.active(mode)
    limit = profile.max_ack_p99_ms if profile is not None else 0
    figures = {}
    if limit:
        since = VenuePause.last_resumed(mode)
        figures = Order.objects.ack_latency(mode=mode, window=profile.ack_window, since=since)
    now = timezone.now()
    paused = {p.exchange_id: p for p in VenuePause.paused(mode).select_related("exchange")}
    retried = set()  # their window starts now: these figures are the ones that paused them
    retry = limit and profile.ack_retry_after_s
    for exchange_id, pause in list(paused.items()):
        figure = figures.get(exchange_id)
        p99 = figure.p99_ms if figure is not None else None
        if not checks.ack_too_slow(p99, limit):
            resumed = pause.resume(p99_ms=p99)
        elif retry and now - pause.paused_at >= timedelta(seconds=retry):
            resumed = pause.resume(p99_ms=p99, retried=True)
            retried.add(exchange_id)
        else:
            continue
        if resumed:
            del paused[exchange_id]
    for exchange_id, figure in figures.items():
        if exchange_id in paused or exchange_id in retried:
            continue
        if not checks.ack_too_slow(figure.p99_ms, limit):
            continue
        pause = VenuePause.pause(
            exchange_id=exchange_id,
            mode=mode,
            p99_ms=figure.p99_ms,
            limit_ms=limit,
            orders=figure.orders,
        )
        if pause is not None:
            paused[exchange_id] = pause
            alerts.limit_hit(checks.ACK_SLOW, pause.exchange.slug)
    return list(paused.values())


def consecutive_failures(mode: str, *, since: datetime | None = None) -> int:
    """Newest decided trades in a row that failed, needed a hedge or unwind, or were closed with
    a residual kept.

    Counted only since the kill switch last changed, so a reset gives the desk a fresh start.
    """
    trades = Trade.objects.filter(mode=mode).exclude(state__in=_UNDECIDED)
    if since is not None:
        trades = trades.filter(created_at__gt=since)
    newest = trades.order_by("-created_at", "-id").values_list("state", "hedged_at", "residual")
    count = 0
    for state, hedged_at, residual in newest[:100]:
        failed = state in (Trade.State.FAILED, Trade.State.PARTIALLY_FILLED)
        if not failed and not hedged_at and residual is None:
            break
        count += 1
    return count


def candidate_of(opportunity: Opportunity) -> Candidate:
    """The opportunity's last observed cross, with the age of each venue's published book."""
    market = opportunity.market.symbol
    return Candidate(
        market=market,
        buy_venue=opportunity.buy_exchange.slug,
        sell_venue=opportunity.sell_exchange.slug,
        size=opportunity.size,
        buy_vwap=opportunity.buy_vwap,
        sell_vwap=opportunity.sell_vwap,
        net_profit=opportunity.net_profit,
        net_bps=opportunity.net_bps,
        notional=opportunity.size * opportunity.buy_vwap,
        buy_book_age_ms=_book_age_ms(opportunity.buy_exchange.slug, market),
        sell_book_age_ms=_book_age_ms(opportunity.sell_exchange.slug, market),
    )


def _book_age_ms(venue: str, market: str) -> float | None:
    """None when no book was published within the cache's lifetime or it is marked invalid."""
    book = read_book(venue, market)
    if book is None or not book.get("valid", True):
        return None
    return book_age_s(book) * 1000


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
    update_ack_pauses(mode)
    state = desk_state(mode)
    tripped = checks.trip_reasons(limits, state)
    if tripped and not state.kill_switch_on:
        trip_kill_switch(reason=", ".join(tripped))
    reasons = checks.refusals(candidate_of(opportunity), limits, state, automatic=automatic)
    venues = [opportunity.buy_exchange, opportunity.sell_exchange]
    if automatic and profile.not_reconciled(venues):
        reasons.append(NOT_RECONCILED)
    return reasons


def trip_if(*, mode: str, feed_ages_ms: Mapping[str, float] | None = None) -> list[str]:
    """Trip the kill switch if the desk in `mode` is past a limit; return the reasons found.

    For the engine, with each venue's feed age; a stale feed the profile trades on alerts too.
    Pauses and resumes the venues slow to acknowledge orders first.
    """
    update_ack_pauses(mode)
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


def record_refusals(opportunity_id: int, reasons: Iterable[str]) -> None:
    """Add one to each reason's counter on the opportunity in a single UPDATE.

    A reason that says the desk as a whole is at a limit alerts (once per incident).
    """
    counts = Counter(reasons)
    if not counts:
        return
    table = Opportunity._meta.db_table
    pairs = ", ".join(
        ["%s::text, COALESCE((refusals->>%s::text)::bigint, 0) + %s::bigint"] * len(counts)
    )
    sql = f"UPDATE {table} SET refusals = refusals || jsonb_build_object({pairs}) WHERE id = %s"
    params = [value for reason, n in counts.items() for value in (reason, reason, n)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, opportunity_id])
    for reason in counts.keys() & checks.DESK_LIMITS:
        alerts.limit_hit(reason, str(opportunity_id))
