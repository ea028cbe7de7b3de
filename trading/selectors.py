"""Reads over trades and opportunities: realised PnL, open imbalances, the risk status panel."""

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, When
from django.utils import timezone
from redis.exceptions import RedisError

from markets.heartbeat import engine_heartbeat
from markets.money import ZERO, day_start
from risk.models import KillSwitch, RiskProfile
from trading.models import Opportunity, Order, Trade

# How many of a profile's latest opportunities its admin page shows.
DECISIONS_SHOWN = 20


def realised_pnl(*, mode: str, since: datetime | None = None) -> dict[str, Decimal]:
    """{quote currency: realised net PnL} of the trades in `mode` closed since `since` (or ever)."""
    trades = Trade.objects.filter(mode=mode, state=Trade.State.CLOSED)
    if since is not None:
        trades = trades.filter(closed_at__gte=since)
    rows = trades.values("opportunity__market__quote").annotate(pnl=Sum("realised_net_profit"))
    return {row["opportunity__market__quote"]: row["pnl"] or Decimal(0) for row in rows}


def realised_pnl_today(*, mode: str) -> dict[str, Decimal]:
    """Realised PnL of trades closed since midnight UTC today, per quote currency."""
    return realised_pnl(mode=mode, since=day_start(timezone.now().date()))


def open_imbalances(*, mode: str) -> dict[tuple[str, str], Decimal]:
    """{(venue, base asset): signed base amount} of unclosed trades whose legs do not match."""
    signed = Case(
        When(side=Order.Side.BUY, then=F("filled_amount")),
        default=-F("filled_amount"),
        output_field=DecimalField(max_digits=28, decimal_places=12),
    )
    open_trades = Trade.objects.filter(mode=mode).exclude(
        state__in=[Trade.State.CLOSED, Trade.State.REJECTED, Trade.State.FAILED]
    )
    per_venue = (
        Order.objects.filter(trade__in=open_trades)
        .values("trade", "exchange__slug", "trade__opportunity__market__base")
        .annotate(net=Sum(signed))
    )
    per_trade: dict[int, Decimal] = defaultdict(Decimal)
    rows = list(per_venue)
    for row in rows:
        per_trade[row["trade"]] += row["net"]
    result: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        if per_trade[row["trade"]] != 0:
            key = (row["exchange__slug"], row["trade__opportunity__market__base"])
            result[key] += row["net"]
    return dict(result)


def recent_decisions(profile: RiskProfile) -> list[Opportunity]:
    """The latest opportunities on the profile's markets, each with `trade_state` when taken."""
    opportunities = Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange")
    markets = list(profile.allowed_markets.all())
    if markets:
        opportunities = opportunities.filter(market__in=markets)
    latest = list(opportunities.order_by("-opened_at")[:DECISIONS_SHOWN])
    states = dict(
        Trade.objects.filter(opportunity__in=latest, mode=profile.mode).values_list(
            "opportunity_id", "state"
        )
    )
    for opportunity in latest:
        opportunity.trade_state = states.get(opportunity.pk, "")
    return latest


@dataclass(frozen=True, slots=True)
class ProfileStatus:
    profile: RiskProfile
    pnl_today: Decimal


@dataclass(frozen=True, slots=True)
class StatusPanel:
    """What the risk admin's live status section shows; `engine_age_s` is None without a
    heartbeat."""

    profiles: list[ProfileStatus]
    kill_switch: KillSwitch
    engine_age_s: float | None
    feeds: dict


def status_panel() -> StatusPanel:
    """The kill switch, each active profile with today's realised PnL, the engine and feeds."""
    try:
        heartbeat = engine_heartbeat()
    except RedisError:  # the heartbeat's cache (Redis in the full stack) is down: not reporting
        heartbeat = None
    profiles = RiskProfile.objects.filter(is_active=True).order_by("mode")
    return StatusPanel(
        profiles=[
            ProfileStatus(p, sum(realised_pnl_today(mode=p.mode).values(), ZERO)) for p in profiles
        ],
        kill_switch=KillSwitch.current(),
        engine_age_s=round(time.time() - heartbeat["ts"], 1) if heartbeat else None,
        feeds=(heartbeat or {}).get("feeds", {}),
    )
