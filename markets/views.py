"""The dashboard and market detail pages, and the partial contexts the live pushes reuse."""

import time
from decimal import Decimal
from itertools import zip_longest

from django.conf import settings
from django.shortcuts import get_object_or_404

from arbsite.access import desk_view
from arbsite.live import OPERATE, VIEW, desk_context, render_page
from markets.heartbeat import engine_heartbeat
from portfolio.views import pnl_context
from trading.detector import best_cross, pays_at_top
from trading.views import open_opportunities_context, recent_trades_context

from .bookcache import read_book
from .models import Exchange, Listing, Market

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


@desk_view
def market_detail(request, symbol: str):
    market = get_object_or_404(Market, symbol=symbol)
    topics = ["desk", f"depth:{market.symbol}"]
    context = {"market": market, **depth_context(market.symbol), "topics": topics}
    return render_page(request, "market_detail.html", context)


def _listings(symbol: str) -> list[Listing]:
    return list(
        Listing.objects.filter(market__symbol=symbol, enabled=True, exchange__enabled=True)
        .select_related("exchange")
        .order_by("exchange__slug")
    )


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
    listings = _listings(symbol)
    rows = []
    for listing in listings:
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


def on_grid(value: Decimal | None, step: Decimal) -> Decimal | None:
    """`value` written with the decimals of `step` (a tick or lot size) when it lies on that grid.

    Binance sends eight decimals whatever the tick ("60078.01000000" for a 0.01 tick); the desk
    reads "60078.01". A value off the grid is shown as it came: a price is never rounded here.
    """
    if value is None:
        return None
    decimals = min(step.normalize().as_tuple().exponent, 0)
    shown = value.quantize(Decimal(1).scaleb(decimals))
    return shown if shown == value else value


def _levels(levels: list, listing: Listing) -> list[tuple[Decimal, Decimal]]:
    """Book levels as the desk reads them: prices on the venue's tick, sizes on its lot."""
    tick, lot = listing.tick_size, listing.lot_size
    return [(on_grid(price, tick), on_grid(size, lot)) for price, size in levels]


def _venue_row(listing: Listing, book: dict | None, now: float) -> dict:
    bids = book["bids"] if book else []
    asks = book["asks"] if book else []
    received = book.get("received_ts") or book.get("published_ts") if book else None
    bid, bid_size = _levels(bids[:1], listing)[0] if bids else (None, None)
    ask, ask_size = _levels(asks[:1], listing)[0] if asks else (None, None)
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


def depth_context(symbol: str, *, audience: str = VIEW) -> dict:
    """Each venue's top levels side by side, and the cross-venue spread the chart plots."""
    now = time.time()
    venues = []
    for listing in _listings(symbol):
        book = read_book(listing.exchange.slug, symbol)
        bids = _levels(book["bids"][:DEPTH_LEVELS], listing) if book else []
        asks = _levels(book["asks"][:DEPTH_LEVELS], listing) if book else []
        venues.append(
            {
                "name": listing.exchange.name,
                "slug": listing.exchange.slug,
                "bids": bids,
                "asks": asks,
                "levels": list(zip_longest(bids, asks)),
                "valid": bool(book and book.get("valid", True)),
                "received_ts": book.get("received_ts") if book else None,
                "age_s": (now - book["received_ts"]) if book and book.get("received_ts") else None,
            }
        )
    valid = [v for v in venues if v["valid"] and v["bids"] and v["asks"]]
    spread_bps = None
    if valid:
        top_bid = max(v["bids"][0][0] for v in valid)
        low_ask = min(v["asks"][0][0] for v in valid)
        spread_bps = (top_bid - low_ask) / ((top_bid + low_ask) / 2) * BPS
    return {
        "depth": {
            "symbol": symbol,
            "venues": venues,
            "spread_bps": spread_bps,
            "ts": now,
        }
    }


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
