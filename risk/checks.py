"""Pre-trade checks: why an opportunity may not be taken now, and when the desk must stop itself.

Pure: plain values in, short stable reason strings out; no Django, no I/O.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from markets.money import ZERO

# The reasons; stored as keys of Opportunity.refusals, so renaming one splits its history.
KILL_SWITCH = "kill switch on"
AUTO_OFF = "automatic execution off"
MARKET_NOT_ALLOWED = "market not allowed"
VENUE_NOT_ALLOWED = "venue not allowed"
PROFIT_BPS = "net profit below minimum (bps)"
PROFIT_QUOTE = "net profit below minimum (quote)"
NOTIONAL = "notional above maximum"
BOOK_TOO_OLD = "book too old"
DAILY_LOSS = "daily loss limit reached"
TRADE_RATE = "trade rate limit"
POSITION = "position limit"
IMBALANCE = "open imbalance limit"
CONSECUTIVE_FAILURES = "consecutive failures limit"
FEED_STALE = "live feed stale"
ACK_SLOW = "venue slow to acknowledge orders"

# Reasons that say the desk as a whole is at a limit (worth an alert), not that one
# opportunity is too small.
DESK_LIMITS = frozenset({DAILY_LOSS, TRADE_RATE, POSITION, IMBALANCE, CONSECUTIVE_FAILURES})


@dataclass(frozen=True, slots=True)
class Candidate:
    """The opportunity as the checks see it; ages are None when the book is missing or invalid."""

    market: str
    buy_venue: str
    sell_venue: str
    size: Decimal
    buy_vwap: Decimal
    sell_vwap: Decimal
    net_profit: Decimal
    net_bps: Decimal
    notional: Decimal
    buy_book_age_ms: float | None
    sell_book_age_ms: float | None

    @property
    def base(self) -> str:
        """The asset bought and sold; market symbols are canonical BASE-QUOTE."""
        return self.market.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class Limits:
    """The active risk profile's limits for one mode, as plain values."""

    mode: str
    auto_execute: bool
    min_profit_bps: Decimal
    min_profit_quote: Decimal
    max_notional: Decimal
    max_position: Decimal
    max_daily_loss: Decimal
    max_trades_per_minute: int
    max_book_age_ms: int
    max_open_imbalance: Decimal
    max_consecutive_failures: int
    allowed_venues: frozenset[str]
    allowed_markets: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeskState:
    """What the desk has done so far; positions are (venue, asset) -> signed value in quote."""

    kill_switch_on: bool = False
    realised_pnl_today: Decimal = ZERO
    trades_last_minute: int = 0
    positions: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    open_imbalance: Decimal = ZERO
    consecutive_failures: int = 0
    # Venues (slugs) whose order acknowledgements are too slow for automatic execution now.
    paused_venues: frozenset[str] = frozenset()


def refusals(
    candidate: Candidate, limits: Limits, state: DeskState, *, automatic: bool
) -> list[str]:
    """Return every reason `candidate` may not be executed now; [] means it may."""
    reasons = [*desk_refusals(limits, state, automatic=automatic)]
    if candidate.market not in limits.allowed_markets:
        reasons.append(MARKET_NOT_ALLOWED)
    if not {candidate.buy_venue, candidate.sell_venue} <= limits.allowed_venues:
        reasons.append(VENUE_NOT_ALLOWED)
    if automatic and {candidate.buy_venue, candidate.sell_venue} & state.paused_venues:
        reasons.append(ACK_SLOW)
    reasons += profit_refusals(candidate.net_bps, candidate.net_profit, limits)
    if candidate.notional > limits.max_notional:
        reasons.append(NOTIONAL)
    if _book_too_old(candidate, limits.max_book_age_ms):
        reasons.append(BOOK_TOO_OLD)
    if _over_position(candidate, limits.max_position, state.positions):
        reasons.append(POSITION)
    return reasons


class ProfitThresholds(Protocol):
    """What the profit check reads: `Limits`, or a `RiskProfile` itself."""

    min_profit_bps: Decimal
    min_profit_quote: Decimal


def profit_refusals(net_bps: Decimal, net_profit: Decimal, limits: ProfitThresholds) -> list[str]:
    """Why a cross netting `net_bps` and `net_profit` is too small for `limits`; [] if it pays."""
    reasons = []
    if net_bps < limits.min_profit_bps:
        reasons.append(PROFIT_BPS)
    if net_profit < limits.min_profit_quote:
        reasons.append(PROFIT_QUOTE)
    return reasons


def desk_refusals(limits: Limits, state: DeskState, *, automatic: bool) -> list[str]:
    """The reasons that refuse every opportunity alike, whatever its size or venues."""
    reasons = []
    if state.kill_switch_on:
        reasons.append(KILL_SWITCH)
    if automatic and not limits.auto_execute:
        reasons.append(AUTO_OFF)
    if daily_loss_reached(limits, state):
        reasons.append(DAILY_LOSS)
    if state.trades_last_minute >= limits.max_trades_per_minute:
        reasons.append(TRADE_RATE)
    if state.open_imbalance > ZERO and state.open_imbalance >= limits.max_open_imbalance:
        reasons.append(IMBALANCE)
    if state.consecutive_failures >= limits.max_consecutive_failures:
        reasons.append(CONSECUTIVE_FAILURES)
    return reasons


def daily_loss_reached(limits: Limits, state: DeskState) -> bool:
    """A loss equal to the limit stops trading; a limit of 0 stops at the first loss."""
    loss = -state.realised_pnl_today
    return loss > ZERO and loss >= limits.max_daily_loss


def trip_reasons(
    limits: Limits, state: DeskState, *, feed_ages_ms: Mapping[str, float] | None = None
) -> list[str]:
    """Why the kill switch must trip by itself; [] means it need not.

    `feed_ages_ms` is each venue's time since its feed last spoke; only venues the profile
    trades on count, and only in live mode, where a blind venue means real unhedged risk.
    """
    reasons = []
    if daily_loss_reached(limits, state):
        reasons.append(DAILY_LOSS)
    if state.consecutive_failures >= limits.max_consecutive_failures:
        reasons.append(CONSECUTIVE_FAILURES)
    if limits.mode == "live" and stale_venues(limits, feed_ages_ms or {}):
        reasons.append(FEED_STALE)
    return reasons


def stale_venues(limits: Limits, feed_ages_ms: Mapping[str, float]) -> list[str]:
    """The allowed venues whose feed is older than the maximum book age, sorted."""
    return sorted(
        venue
        for venue, age in feed_ages_ms.items()
        if venue in limits.allowed_venues and age > limits.max_book_age_ms
    )


def ack_too_slow(p99_ms: float | None, max_ack_p99_ms: int) -> bool:
    """Whether a venue answering orders with this p99 pauses automatic execution: above the
    limit; never with the limit off (0) or no order timed."""
    return max_ack_p99_ms > 0 and p99_ms is not None and p99_ms > max_ack_p99_ms


def _book_too_old(candidate: Candidate, max_age_ms: int) -> bool:
    ages = (candidate.buy_book_age_ms, candidate.sell_book_age_ms)
    return any(age is None or age > max_age_ms for age in ages)


def _over_position(
    candidate: Candidate, max_position: Decimal, positions: Mapping[tuple[str, str], Decimal]
) -> bool:
    """Whether either leg takes its venue's base position beyond the limit.

    A leg that brings a position back toward zero is always allowed, even from beyond the limit.
    """
    legs: Iterable[tuple[str, Decimal]] = (
        (candidate.buy_venue, candidate.notional),
        (candidate.sell_venue, -candidate.size * candidate.sell_vwap),
    )
    for venue, change in legs:
        before = positions.get((venue, candidate.base), ZERO)
        after = before + change
        if abs(after) > max_position and abs(after) > abs(before):
            return True
    return False
