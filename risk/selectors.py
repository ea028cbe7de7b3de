"""Risk reads: limits and desk state as plain values, the admin's status panel and decisions."""

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from markets.bookcache import book_age_s, read_book
from markets.heartbeat import engine_heartbeat
from portfolio.selectors import exposure, realised_pnl_today
from risk.checks import ZERO, Candidate, DeskState, Limits
from risk.models import KillSwitch, RiskProfile
from trading.models import Opportunity, Trade

# Trades still in flight or refused before any order: neither a success nor a failure.
_UNDECIDED = [Trade.State.PENDING, Trade.State.SUBMITTED, Trade.State.REJECTED]


def limits_of(profile: RiskProfile) -> Limits:
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


def desk_state(mode: str, *, kill_switch: KillSwitch | None = None) -> DeskState:
    """The desk's state in `mode` read from the database (and the book cache for prices)."""
    switch = kill_switch or KillSwitch.current()
    rows = exposure(mode=mode)
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
    )


def consecutive_failures(mode: str, *, since=None) -> int:
    """Newest decided trades in a row that failed or needed a hedge or unwind.

    Counted only since the kill switch last changed, so a reset gives the desk a fresh start.
    """
    trades = Trade.objects.filter(mode=mode).exclude(state__in=_UNDECIDED)
    if since is not None:
        trades = trades.filter(created_at__gt=since)
    count = 0
    for state, hedged_at in trades.order_by("-created_at", "-id").values_list("state", "hedged_at")[
        :100
    ]:
        if state != Trade.State.FAILED and state != Trade.State.PARTIALLY_FILLED and not hedged_at:
            break
        count += 1
    return count


def candidate_of(opportunity: Opportunity, *, now: float | None = None) -> Candidate:
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
        buy_book_age_ms=_book_age_ms(opportunity.buy_exchange.slug, market, now),
        sell_book_age_ms=_book_age_ms(opportunity.sell_exchange.slug, market, now),
    )


def _book_age_ms(venue: str, market: str, now: float | None) -> float | None:
    """None when no book was published within the cache's lifetime or it is marked invalid."""
    book = read_book(venue, market)
    if book is None or not book.get("valid", True):
        return None
    return book_age_s(book, now) * 1000


@dataclass(frozen=True, slots=True)
class ProfileStatus:
    profile: RiskProfile
    pnl_today: Decimal


@dataclass(frozen=True, slots=True)
class StatusPanel:
    """What the admin's live status section shows; `engine_age_s` is None without a heartbeat."""

    profiles: list[ProfileStatus]
    kill_switch: KillSwitch
    engine_age_s: float | None
    feeds: dict


def status_panel() -> StatusPanel:
    heartbeat = engine_heartbeat()
    profiles = RiskProfile.objects.filter(is_active=True).order_by("mode")
    return StatusPanel(
        profiles=[
            ProfileStatus(p, sum(realised_pnl_today(mode=p.mode).values(), ZERO)) for p in profiles
        ],
        kill_switch=KillSwitch.current(),
        engine_age_s=round(time.time() - heartbeat["ts"], 1) if heartbeat else None,
        feeds=(heartbeat or {}).get("feeds", {}),
    )


def recent_decisions(profile: RiskProfile, *, limit: int = 20) -> list[Opportunity]:
    """The latest opportunities on the profile's markets, each with `trade_state` when taken."""
    opportunities = Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange")
    markets = list(profile.allowed_markets.all())
    if markets:
        opportunities = opportunities.filter(market__in=markets)
    latest = list(opportunities.order_by("-opened_at")[:limit])
    states = dict(
        Trade.objects.filter(Q(opportunity__in=latest), mode=profile.mode).values_list(
            "opportunity_id", "state"
        )
    )
    for opportunity in latest:
        opportunity.trade_state = states.get(opportunity.pk, "")
    return latest
