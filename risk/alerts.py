"""Alerts to the desk's channels (apprise URLs in ALERT_URLS): one message per incident."""

from django.core.cache import cache
from django.db import transaction

from markets import notices
from risk.tasks import alert_urls, send_alert

# One message per (kind, key) in this window: an incident repeats on every tick.
QUIET_S = 600

KILL_SWITCH = "kill switch"
LIMIT = "limit hit"
ONE_LEGGED = "one-legged trade"
FEED_DOWN = "feed down"
# The pages hear of one limit at most once a minute: it refuses every opportunity while hit.
PAGE_QUIET_S = 60


def notify(kind: str, key: str, message: str) -> bool:
    """Queue one alert unless (kind, key) alerted within QUIET_S; True if queued.

    Sent by a Celery task after the surrounding transaction commits, never inside a request.
    """
    if not alert_urls():
        return False
    # Memcached-safe key: no spaces.
    if not cache.add(f"alert:{kind}:{key}".replace(" ", "_"), 1, timeout=QUIET_S):
        return False
    title = f"Arbitrage desk: {kind}"
    transaction.on_commit(lambda: send_alert.delay(title, message))
    return True


def kill_switch_thrown(reason: str, by: str) -> bool:
    return notify(KILL_SWITCH, "on", f"Kill switch on ({by}): {reason}")


def limit_hit(reason: str, market: str) -> bool:
    message = f"Limit hit: {reason} (first seen on {market})"
    if cache.add(f"notice:limit:{reason}".replace(" ", "_"), 1, timeout=PAGE_QUIET_S):
        notices.announce(notices.LIMITS, message, level=notices.WARNING)
    return notify(LIMIT, reason, message)


def one_legged_trade(trade_id: int, detail: str) -> bool:
    """For execution: a leg did not fill completely, so the trade is hedged, unwound or left."""
    return notify(ONE_LEGGED, str(trade_id), f"Trade {trade_id} is one-legged: {detail}")


def feed_down(venue: str, age_ms: float) -> bool:
    return notify(FEED_DOWN, venue, f"The {venue} feed has been silent for {age_ms / 1000:.1f} s")
