"""The dashboard: spreads, open opportunities, venue health, controls, recent trades and PnL."""

import time
from decimal import Decimal

from django.conf import settings

from arbsite.access import OPERATE, VIEW, desk_view
from arbsite.pages.desk import desk_context, render_page
from arbsite.pages.market import levels_on_grid, listings
from arbsite.pages.opportunities import open_opportunities_context
from arbsite.pages.portfolio import pnl_context
from arbsite.pages.trades import recent_trades_context
from markets.bookcache import read_book
from markets.heartbeat import engine_heartbeat
from markets.models import Exchange, Listing, Market
from trading.detector import best_cross, pays_at_top

BPS = Decimal(10_000)
DEPTH_LEVELS = 10
FEED_STATES = {
    "live": "live",
    "stale": "stale",
    "backing_off": "backing off",
    "circuit_open": "circuit open",
    "connecting": "connecting",
}


@desk_view
def dashboard(request):
    symbols = list(Market.objects.values_list("symbol", flat=True))
    audience = OPERATE if request.user.has_perm("arbsite.operate_desk") else VIEW

    context = {
        "spreads": [spread_context(symbol)["spread"] for symbol in symbols],
        **open_opportunities_context(audience=audience),
        **health_context(),
        **controls_context(audience=audience),
        **recent_trades_context(),
        **pnl_context(),
        "topics": ["desk", "health", "controls", "opportunities", "trades", "pnl"]
        + [f"spreads:{symbol}" for symbol in symbols],
    }
    return render_page(request, "dashboard.html", context)


def _min_profit_bps() -> Decimal:
    from risk.models import RiskProfile

    profile = RiskProfile.objects.filter(is_active=True).order_by("-mode").first()
    return profile.min_profit_bps if profile else Decimal(0)


def _top_net_bps(ask: Decimal, bid: Decimal, buy_fee: Decimal, sell_fee: Decimal) -> Decimal:
    """Net margin in bps of buying at `ask` and selling at `bid`, both taker fees paid."""
    return (bid * (1 - sell_fee) - ask * (1 + buy_fee)) / ask * BPS


def spread_context(symbol: str, *, audience: str = VIEW) -> dict:
    """One market's spread table: each venue's best bid and ask, their age, the best cross."""
    now = time.time()
    venue_listings = listings(symbol)
    rows = []
    for listing in venue_listings:
        book = read_book(listing.exchange.slug, symbol)
        rows.append(_venue_row(listing, book, now))
    live = [r for r in rows if r["bid"] is not None and r["ask"] is not None and r["valid"]]
    min_bps = _min_profit_bps()
    best = None
    for buy in live:
        for sell in live:
            if buy is sell:
                continue
            fee_a, fee_b = buy["listing"].exchange.taker_fee, sell["listing"].exchange.taker_fee
            net_bps = _top_net_bps(buy["ask"], sell["bid"], fee_a, fee_b)
            if buy["best_bps"] is None or net_bps > buy["best_bps"]:
                buy["best_bps"], buy["best_sell"] = net_bps, sell["venue"]
                buy["pays"] = pays_at_top(buy["ask"], sell["bid"], fee_a, fee_b, min_bps)
            if best is None or net_bps > best["net_bps"]:
                best = {"buy": buy, "sell": sell, "net_bps": net_bps}
    return {
        "spread": {
            "symbol": symbol,
            "slug": symbol.replace("/", "_"),
            "rows": rows,
            "best": _best_cross(best, min_bps, now) if best else None,
            "min_profit_bps": min_bps,
        }
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
        "book": book,
        "best_bps": None,
        "best_sell": None,
        "pays": False,
    }


def _best_cross(best: dict, min_bps: Decimal, now: float) -> dict:
    """The best venue pair at the top; walked through depth for its size when it pays."""
    buy, sell = best["buy"], best["sell"]
    fee_a, fee_b = buy["listing"].exchange.taker_fee, sell["listing"].exchange.taker_fee
    cross = None
    if pays_at_top(buy["ask"], sell["bid"], fee_a, fee_b, min_bps):
        cross = best_cross(
            buy["book"]["asks"],
            sell["book"]["bids"],
            buy_fee=fee_a,
            sell_fee=fee_b,
            min_profit_bps=min_bps,
            buy_lot=buy["listing"].lot_size,
            sell_lot=sell["listing"].lot_size,
            exchange_ts=None,
            received_ts=None,
            detected_ts=now,
        )
    return {"buy": buy["venue"], "sell": sell["venue"], "net_bps": best["net_bps"], "cross": cross}


def health_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Each venue connection's state from the engine heartbeat, and the heartbeat's age."""
    heartbeat = engine_heartbeat()
    names = dict(Exchange.objects.values_list("slug", "name"))
    if heartbeat is None:
        return {"health": {"engine_up": False, "age_s": None, "feeds": [], "names": names}}
    age = time.time() - heartbeat["ts"]
    feeds = []
    for venue, feed in sorted(heartbeat.get("feeds", {}).items()):
        state = feed.get("state", "unknown")
        feeds.append(
            {
                "venue": names.get(venue, venue),
                "state": state,
                "label": FEED_STATES.get(state, state.replace("_", " ")),
                "last_frame_age": feed.get("last_frame_age"),
                "reconnects": feed.get("reconnects", 0),
                "frames": feed.get("frames", 0),
                "books_valid": feed.get("books_valid"),
                "books": feed.get("books"),
            }
        )
    return {
        "health": {
            "engine_up": age <= settings.ENGINE_HEARTBEAT_MAX_AGE_S,
            "age_s": age,
            "ts": heartbeat["ts"],
            "feeds": feeds,
        }
    }


def controls_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Automatic execution and the kill switch, with their controls for Traders and above."""
    return {"controls": desk_context(audience=audience)["desk"]}
