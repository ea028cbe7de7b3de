"""The dashboard: spreads, open opportunities, venue health, controls, recent trades and PnL."""

import time
from datetime import timedelta

from django.conf import settings
from redis.exceptions import RedisError

from arbsite.access import OPERATE, TRADES_PERM, VIEW, desk_view
from arbsite.pages import shared
from arbsite.pages.desk import desk_context, render_page
from arbsite.pages.market import levels_on_grid, listed_books
from arbsite.pages.opportunities import open_opportunities_context
from arbsite.pages.portfolio import pnl_context
from arbsite.pages.trades import recent_trades_context
from markets.heartbeat import engine_heartbeat
from markets.models import Listing, Market
from markets.money import net_bps
from risk.checks import profit_refusals
from risk.models import VenuePause
from trading.models import Opportunity, Order

DEPTH_LEVELS = 10
FEED_STATES = {
    "live": "live",
    "stale": "stale",
    "backing_off": "backing off",
    "circuit_open": "circuit open",
    "connecting": "connecting",
    "frozen": "frozen: no frame, not even a heartbeat",
}


@desk_view
def dashboard(request):
    symbols = list(Market.objects.values_list("symbol", flat=True))
    audience = OPERATE if request.user.has_perm("arbsite.operate_desk") else VIEW
    sees_trades = request.user.has_perm(TRADES_PERM)

    context = {
        "spreads": [spread_context(symbol)["spread"] for symbol in symbols],
        **open_opportunities_context(audience=audience),
        **health_context(),
        **controls_context(audience=audience),
        **(recent_trades_context() if sees_trades else {}),
        "sees_trades": sees_trades,
        **pnl_context(),
        "topics": ["desk", "health", "controls", "opportunities", "pnl"]
        + (["trades"] if sees_trades else [])
        + [f"spreads:{symbol}" for symbol in symbols],
    }
    return render_page(request, "dashboard.html", context)


def spread_context(symbol: str, *, audience: str = VIEW) -> dict:
    """One market's spread table as the engine sees it: each venue's published top, and the
    crosses the engine has open, marked where they pay under the active risk profile."""
    now = time.time()
    books, unavailable = listed_books(symbol)
    rows = [_venue_row(listing, book, now) for listing, book in books]
    profile = shared.active_profiles().get(shared.execution_mode())
    for row in rows:
        # The engine leaves a book this late by its venue's clock out of every cross.
        row["lagging"] = profile is not None and row["lag_s"] * 1000 > profile.max_lag_ms
    _top_crosses(rows)
    opened = sorted(
        (o for o in shared.open_opportunities() if o.market.symbol == symbol),
        key=lambda o: (o.net_bps, o.id),
        reverse=True,
    )
    # The profile's own thresholds: the profit check reads nothing else of the limits.
    paying = [
        o for o in opened if profile and not profit_refusals(o.net_bps, o.net_profit, profile)
    ]
    for row in rows:
        row["pays"] = any(o.buy_exchange_id == row["listing"].exchange_id for o in paying)
    return {
        "spread": {
            "symbol": symbol,
            "slug": symbol.replace("/", "_"),
            "rows": rows,
            "best": _best(paying or opened, bool(paying), rows),
            "books_unavailable": unavailable,
        }
    }


def _top_crosses(rows: list[dict]) -> None:
    """Each row's best net margin at the top buying there and selling on another venue."""
    live = [
        r
        for r in rows
        if r["bid"] is not None and r["ask"] is not None and r["valid"] and not r["lagging"]
    ]
    for buy in live:
        for sell in live:
            if buy is sell:
                continue
            fees = buy["listing"].exchange.taker_fee, sell["listing"].exchange.taker_fee
            margin = net_bps(buy["ask"], sell["bid"], *fees)
            if buy["best_bps"] is None or margin > buy["best_bps"]:
                buy["best_bps"], buy["best_sell"] = margin, sell["venue"]


def _best(opportunities: list[Opportunity], pays: bool, rows: list[dict]) -> dict | None:
    """The engine's best open cross; without one, the best pair at the top (it pays nothing)."""
    if opportunities:
        best = opportunities[0]
        return {
            "buy": best.buy_exchange.name,
            "sell": best.sell_exchange.name,
            "net_bps": best.net_bps,
            "opportunity": best,
            "pays": pays,
        }
    tops = [r for r in rows if r["best_bps"] is not None]
    if not tops:
        return None
    top = max(tops, key=lambda r: r["best_bps"])
    return {
        "buy": top["venue"],
        "sell": top["best_sell"],
        "net_bps": top["best_bps"],
        "pays": False,
    }


def _venue_row(listing: Listing, book: dict | None, now: float) -> dict:
    bids = book["bids"] if book else []
    asks = book["asks"] if book else []
    received = book.get("received_ts") or book.get("published_ts") if book else None
    bid, bid_size = levels_on_grid(bids[:1], listing)[0] if bids else (None, None)
    ask, ask_size = levels_on_grid(asks[:1], listing)[0] if asks else (None, None)
    return {
        "listing": listing,
        "venue": listing.exchange.name,
        "bid": bid,
        "bid_size": bid_size,
        "ask": ask,
        "ask_size": ask_size,
        "received_ts": received,
        "age_s": None if received is None else max(0.0, now - received),
        "valid": bool(book and book.get("valid", True)),
        "lag_s": (book.get("lag") or 0.0) if book else 0.0,
        "book": book,
        "best_bps": None,
        "best_sell": None,
        "pays": False,
    }


def health_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Each venue connection's state from the engine heartbeat, and the heartbeat's age."""
    try:
        heartbeat = engine_heartbeat()
    except RedisError:  # the heartbeat is in the default cache, Redis in the full stack
        return {"health": {"engine_up": False, "age_s": None, "feeds": [], "cache_down": True}}
    names = {slug: name for _, slug, name in shared.venues()}
    if heartbeat is None:
        return {"health": {"engine_up": False, "age_s": None, "feeds": [], "names": names}}
    age = time.time() - heartbeat["ts"]
    window, acks = ack_figures()
    feeds = []
    for venue, feed in sorted(heartbeat.get("feeds", {}).items()):
        state = feed.get("state", "unknown")
        feeds.append(
            {
                "venue": names.get(venue, venue),
                "state": state,
                "label": FEED_STATES.get(state, state.replace("_", " ")),
                "last_frame_age": feed.get("last_frame_age"),
                "lag": feed.get("lag") or 0.0,
                "reconnects": feed.get("reconnects", 0),
                "frames": feed.get("frames", 0),
                "books_valid": feed.get("books_valid"),
                "books": feed.get("books"),
                "ack": acks.get(venue, {}),
            }
        )
    return {
        "health": {
            "engine_up": age <= settings.ENGINE_HEARTBEAT_MAX_AGE_S,
            "age_s": age,
            "ts": heartbeat["ts"],
            "feeds": feeds,
            "ack_window": window,
        }
    }


def ack_figures() -> tuple[int | None, dict[str, dict]]:
    """The active profile's acknowledgement window, and by venue slug its p50 and p99 over it
    (`figures`) and its open pause, in the mode the desk executes in; none without a profile."""
    mode = shared.execution_mode()
    profile = shared.active_profiles().get(mode)
    if profile is None:
        return None, {}
    slugs = {pk: slug for pk, slug, _ in shared.venues()}
    acks = {
        slugs[pk]: {"figures": figures}
        for pk, figures in Order.objects.ack_latency(mode=mode, window=profile.ack_window).items()
    }
    retry = timedelta(seconds=profile.ack_retry_after_s)
    for pause in VenuePause.paused(mode):
        ack = acks.setdefault(slugs[pause.exchange_id], {})
        ack["pause"] = pause
        ack["retry_at"] = pause.paused_at + retry if profile.ack_retry_after_s else None
    return profile.ack_window, acks


def controls_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Automatic execution and the kill switch, with their controls for Traders and above."""
    return {"controls": desk_context(audience=audience)["desk"]}
