"""Desk events told to the pages as notifications: which events, in what words, at what level.

A trade's state change and the kill switch are announced where they are recorded (a TradeEvent
row, risk's `desk_changed`), so nothing announces what rolled back; a venue feed going down or
coming back is seen in the engine's heartbeat by the web process (`FeedWatch`); a risk limit hit
is announced by risk.alerts. Who may see each category is arbsite.live's to say.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models.signals import post_save
from django.dispatch import receiver

from markets import notices
from markets.money import amount_text
from risk.signals import desk_changed
from trading.models import Trade, TradeEvent

State = Trade.State
# The trade states worth a notification, with their level.
TRADE_LEVELS = {
    State.CLOSED: notices.SUCCESS,  # a warning when it lost
    State.PARTIALLY_FILLED: notices.ERROR,  # a leg failed: the desk holds an imbalance
    State.HEDGED: notices.WARNING,
    State.UNWOUND: notices.WARNING,
    State.FAILED: notices.ERROR,
    State.REJECTED: notices.WARNING,
}
# The kill switch's actions (risk.services), with their level and words.
KILL_SWITCH_WORDS = {
    "kill switch thrown": (notices.ERROR, "Kill switch thrown by {by}: {reason}"),
    "kill switch tripped": (notices.ERROR, "Kill switch tripped by the desk: {reason}"),
    "kill switch reset": (notices.SUCCESS, "Kill switch reset by {by}: the desk may trade again"),
}
# Feed states (the engine heartbeat's) in which a venue's prices cannot be traded on.
FEED_DOWN = {"stale", "backing_off", "circuit_open", "frozen"}


def trade_text(trade: Trade, to_state: str, detail: str) -> str:
    """What a person reads when `trade` reached `to_state`."""
    market = trade.opportunity.market
    head = f"Trade #{trade.pk} {market.symbol}"
    if to_state == State.CLOSED:
        pnl = trade.realised_net_profit or Decimal(0)
        sign = "+" if pnl > 0 else ""
        return f"{head} closed: net {sign}{amount_text(pnl, market.quote)} {market.quote}"
    if to_state == State.PARTIALLY_FILLED:
        return f"{head}: a leg failed to fill completely ({detail}); hedging or unwinding"
    words = {State.HEDGED: "hedged", State.UNWOUND: "unwound", State.FAILED: "failed"}
    return f"{head} {words.get(to_state, 'rejected')}" + (f": {detail}" if detail else "")


@receiver(post_save, sender=TradeEvent, dispatch_uid="announce_trade_event")
def _announce_trade_event(sender, instance: TradeEvent, created: bool, **kwargs) -> None:
    # Inside the transition's transaction: the trade row already holds its new state and PnL.
    if not created or instance.to_state not in TRADE_LEVELS:
        return
    trade = Trade.objects.select_related("opportunity__market").get(pk=instance.trade_id)
    text = trade_text(trade, instance.to_state, instance.detail)
    level = TRADE_LEVELS[instance.to_state]
    if instance.to_state == State.CLOSED and (trade.realised_net_profit or 0) < 0:
        level = notices.WARNING
    notices.announce(notices.TRADE_EVENTS, text, level=level)


@receiver(desk_changed, dispatch_uid="announce_kill_switch")
def _announce_kill_switch(sender, action: str, after: dict, user=None, username="", **kwargs):
    if action not in KILL_SWITCH_WORDS:
        return
    level, words = KILL_SWITCH_WORDS[action]
    by = user.get_username() if user is not None else username or "unknown"
    text = words.format(by=by, reason=after.get("reason") or "no reason given")
    notices.announce(notices.KILL_SWITCH, text, level=level)


@dataclass
class FeedWatch:
    """Each venue feed's last state seen in a heartbeat; `changes` tells which went down or back.

    What a process sees first is only remembered: the pages show the current state already.
    """

    states: dict[str, str] = field(default_factory=dict)

    def changes(self, heartbeat: dict | None) -> list[tuple[str, str]]:
        """(venue, new state) of each feed that went down or came back since the last heartbeat."""
        found = []
        for venue, feed in sorted(((heartbeat or {}).get("feeds") or {}).items()):
            state = feed.get("state", "unknown")
            before, self.states[venue] = self.states.get(venue), state
            went_down = before == "live" and state in FEED_DOWN
            if went_down or (before in FEED_DOWN and state == "live"):
                found.append((venue, state))
        return found


def feed_announcement(name: str, state: str) -> dict:
    """The announcement of venue `name`'s feed reaching `state` (down, or live again)."""
    if state == "live":
        return notices.announcement(notices.FEEDS, f"The {name} feed is back", notices.SUCCESS)
    text = f"The {name} feed is down ({state.replace('_', ' ')})"
    return notices.announcement(notices.FEEDS, text, notices.ERROR)
