"""One market's page: each venue's depth side by side, its mid price over the last half hour
with the desk's trades marked, and the cross-venue spread beneath it."""

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from itertools import zip_longest

from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404

from arbsite.access import TRADES_PERM, VIEW, desk_view
from arbsite.pages import shared
from arbsite.pages.desk import render_page
from markets.bookcache import (
    BOOK_TTL_S,
    TOP_HISTORY_S,
    BookCacheUnavailable,
    TopSample,
    read_books,
    top_history,
)
from markets.models import Listing, Market
from markets.money import BPS, amount_text, on_grid, plain
from trading.models import Order, Trade

DEPTH_LEVELS = 10
SPREAD_PLACES = Decimal("0.0001")


@desk_view
def market_detail(request, symbol: str):
    if "\x00" in symbol:  # no market has one, and PostgreSQL refuses it in a query
        raise Http404("No such market.")
    market = get_object_or_404(Market, symbol=symbol)
    topics = ["desk", f"depth:{market.symbol}"]
    sees_trades = request.user.has_perm(TRADES_PERM)
    if sees_trades:
        topics.append(f"marks:{market.symbol}")
    context = {
        "market": market,
        **depth_context(market.symbol),
        **price_chart_context(market),
        **trade_marks_context(market.symbol, sees_trades=sees_trades),
        "topics": topics,
    }
    return render_page(request, "market_detail.html", context)


def listings(symbol: str) -> list[Listing]:
    """The enabled listings of `symbol` on enabled venues, by venue slug."""
    return [listing for listing in shared.listings() if listing.market.symbol == symbol]


def listed_books(symbol: str) -> tuple[list[tuple[Listing, dict | None]], bool]:
    """Each listing of `symbol` with the book its venue published, and whether the book cache
    was unavailable (then no book at all, rather than an error page)."""
    shown = listings(symbol)
    try:
        books = read_books([listing.exchange.slug for listing in shown], symbol)
        return [(listing, books[listing.exchange.slug]) for listing in shown], False
    except BookCacheUnavailable:
        return [(listing, None) for listing in shown], True


def levels_on_grid(levels: list, listing: Listing) -> list[tuple[Decimal, Decimal]]:
    """Book levels as the desk reads them: prices on the venue's tick, sizes on its lot."""
    tick, lot = listing.tick_size, listing.lot_size
    return [(on_grid(price, tick), on_grid(size, lot)) for price, size in levels]


def depth_context(symbol: str, *, audience: str = VIEW) -> dict:
    """Each venue's top levels side by side, and the cross-venue spread the chart plots."""
    now = time.time()
    venues = []
    books, unavailable = listed_books(symbol)
    for listing, book in books:
        bids = levels_on_grid(book["bids"][:DEPTH_LEVELS], listing) if book else []
        asks = levels_on_grid(book["asks"][:DEPTH_LEVELS], listing) if book else []
        venues.append(
            {
                "name": listing.exchange.name,
                "slug": listing.exchange.slug,
                "bids": bids,
                "asks": asks,
                "levels": list(zip_longest(bids, asks)),
                "valid": bool(book and book.get("valid", True)),
                "mid": None,
                "received_ts": book.get("received_ts") if book else None,
                "age_s": (now - book["received_ts"]) if book and book.get("received_ts") else None,
            }
        )
    valid = [v for v in venues if v["valid"] and v["bids"] and v["asks"]]
    for venue in valid:
        venue["mid"] = (venue["bids"][0][0] + venue["asks"][0][0]) / 2
    spread_bps = None
    if valid:
        top_bid = max(v["bids"][0][0] for v in valid)
        low_ask = min(v["asks"][0][0] for v in valid)
        spread_bps = cross_spread_bps(top_bid, low_ask)
    return {
        "depth": {
            "symbol": symbol,
            "venues": venues,
            "spread_bps": spread_bps,
            "ts": now,
            "books_unavailable": unavailable,
        }
    }


def cross_spread_bps(top_bid: Decimal, low_ask: Decimal) -> Decimal:
    """The highest bid of any venue over the lowest ask of any venue, in bps of their mid."""
    return (top_bid - low_ask) / ((top_bid + low_ask) / 2) * BPS


def spread_series(history: dict[str, list[TopSample]], times: list[int]) -> list[Decimal | None]:
    """The cross-venue spread at each of `times` from each venue's latest sample then, as the
    depth shows it now: a venue's top counts until it is BOOK_TTL_S old (its book expires)."""
    latest: dict[str, TopSample] = {}
    cursors = dict.fromkeys(history, 0)
    spreads = []
    for at in times:
        for venue, samples in history.items():
            while cursors[venue] < len(samples) and samples[cursors[venue]].ts <= at:
                latest[venue] = samples[cursors[venue]]
                cursors[venue] += 1
        live = [s for s in latest.values() if at - s.ts <= BOOK_TTL_S]
        if not live:
            spreads.append(None)
            continue
        bps = cross_spread_bps(max(s.bid for s in live), min(s.ask for s in live))
        spreads.append(bps.quantize(SPREAD_PLACES))
    return spreads


def trade_marks(market: Market, *, since: float) -> list[dict]:
    """The desk's trades in `market` created since `since`, oldest first: when, the price each
    leg filled at (the opportunity's VWAP for a leg that did not fill), size and net PnL."""
    legs = Order.objects.filter(purpose=Order.Purpose.LEG, filled_amount__gt=0)
    trades = (
        Trade.objects.filter(
            opportunity__market=market, created_at__gte=datetime.fromtimestamp(since, UTC)
        )
        .select_related("opportunity__buy_exchange", "opportunity__sell_exchange")
        .prefetch_related(Prefetch("orders", queryset=legs, to_attr="filled_legs"))
        .order_by("created_at", "pk")
    )
    marks = []
    for trade in trades:
        opportunity = trade.opportunity
        filled = {leg.side: leg.average_price for leg in trade.filled_legs}
        buy = filled.get(Order.Side.BUY) or opportunity.buy_vwap
        sell = filled.get(Order.Side.SELL) or opportunity.sell_vwap
        pnl = trade.realised_net_profit
        pnl_text = "not realised" if pnl is None else amount_text(pnl, market.quote)
        marks.append(
            {
                "trade": trade,
                "ts": int(trade.created_at.timestamp()),
                "buy_venue": opportunity.buy_exchange.name,
                "sell_venue": opportunity.sell_exchange.name,
                "buy_price": buy,
                "sell_price": sell,
                "label": (
                    f"Trade #{trade.pk} ({trade.get_state_display().lower()}): "
                    f"bought on {opportunity.buy_exchange.name} at {plain(buy)}, "
                    f"sold on {opportunity.sell_exchange.name} at {plain(sell)}, "
                    f"size {plain(trade.requested_size)} {market.base}, "
                    f"net PnL {pnl_text}" + (f" {market.quote}" if pnl is not None else "")
                ),
            }
        )
    return marks


def price_chart_context(market: Market) -> dict:
    """Each venue's mid over the last TOP_HISTORY_S (from the book cache's sampled tops), the
    cross-venue spread on the same times, as exact decimal text (its trade marks:
    `trade_marks_context`)."""
    shown = listings(market.symbol)
    now = time.time()
    slugs = [listing.exchange.slug for listing in shown]
    try:
        history, unavailable = top_history(market.symbol, slugs, now), False
    except BookCacheUnavailable:
        history, unavailable = {slug: [] for slug in slugs}, True
    times = sorted({s.ts for samples in history.values() for s in samples})
    mids = {}
    for slug, samples in history.items():
        at = {s.ts: s.mid for s in samples}
        mids[slug] = [f"{at[t]:f}" if t in at else None for t in times]
    spreads = spread_series(history, times)
    latest = [
        (listing.exchange.name, history[listing.exchange.slug][-1].mid)
        for listing in shown
        if history[listing.exchange.slug]
    ]
    return {
        "prices": {
            "unavailable": unavailable,
            "latest": latest,
            "latest_spread": next((s for s in reversed(spreads) if s is not None), None),
            "window_min": TOP_HISTORY_S // 60,
            "chart": {
                "symbol": market.symbol,
                "window_s": TOP_HISTORY_S,
                "venues": [{"slug": v.exchange.slug, "name": v.exchange.name} for v in shown],
                "times": times,
                "mids": mids,
                "spread_bps": [None if s is None else f"{s:f}" for s in spreads],
            },
        }
    }


def trade_marks_context(symbol: str, *, audience: str = VIEW, sees_trades: bool = True) -> dict:
    """The desk's trades in `symbol` of the chart's window, as the chart marks them (exact
    decimal text in `chart_json`) and as the table beneath lists them; none for a user who may
    not see trades (a pushed fragment is only sent to those who may)."""
    market = Market.objects.get(symbol=symbol)
    marks = trade_marks(market, since=time.time() - TOP_HISTORY_S) if sees_trades else []
    chart = [
        {
            "ts": m["ts"],
            "buy_price": f"{m['buy_price']:f}",
            "sell_price": f"{m['sell_price']:f}",
            "label": m["label"],
        }
        for m in marks
    ]
    return {
        "market": market,
        "marks": {
            "list": marks,
            "shown": sees_trades,
            "window_min": TOP_HISTORY_S // 60,
            "chart_json": json.dumps(chart),
        },
    }
