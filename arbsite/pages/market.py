"""One market's page: each venue's depth side by side and the cross-venue spread chart."""

import time
from decimal import Decimal
from itertools import zip_longest

from django.http import Http404
from django.shortcuts import get_object_or_404

from arbsite.access import VIEW, desk_view
from arbsite.pages.desk import render_page
from markets.bookcache import BookCacheUnavailable, read_book
from markets.models import Listing, Market
from markets.money import BPS, on_grid

DEPTH_LEVELS = 10


@desk_view
def market_detail(request, symbol: str):
    if "\x00" in symbol:  # no market has one, and PostgreSQL refuses it in a query
        raise Http404("No such market.")
    market = get_object_or_404(Market, symbol=symbol)
    topics = ["desk", f"depth:{market.symbol}"]
    context = {"market": market, **depth_context(market.symbol), "topics": topics}
    return render_page(request, "market_detail.html", context)


def listings(symbol: str) -> list[Listing]:
    return list(
        Listing.objects.filter(market__symbol=symbol, enabled=True, exchange__enabled=True)
        .select_related("exchange")
        .order_by("exchange__slug")
    )


def listed_books(symbol: str) -> tuple[list[tuple[Listing, dict | None]], bool]:
    """Each listing of `symbol` with the book its venue published, and whether the book cache
    was unavailable (then no book at all, rather than an error page)."""
    shown = listings(symbol)
    try:
        return [(listing, read_book(listing.exchange.slug, symbol)) for listing in shown], False
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
            "books_unavailable": unavailable,
        }
    }
