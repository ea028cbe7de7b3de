"""Paper venue: fills against the engine's last published book, with the venue's taker fee.

Orders are remembered by client order id (in the books cache) so a retry finds them.
"""

import asyncio

from django.conf import settings
from django.core.cache import caches

from markets.bookcache import book_age_s, read_book
from markets.money import taker_fee
from markets.venues.orders import FillReport, OrderReport, OrderRequest, take_levels

ORDER_TTL_S = 24 * 3600


def _key(client_order_id: str) -> str:
    return f"paper-order:{client_order_id}"


class PaperVenue:
    """Simulated fills: what the book shows at the moment of the order, level by level."""

    def __init__(self, *, max_book_age_s: float, latency_ms: float | None = None) -> None:
        self.max_book_age_s = max_book_age_s
        if latency_ms is None:
            latency_ms = settings.PAPER_FILL_LATENCY_MS
        self.latency_s = float(latency_ms) / 1000

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        return caches["books"].get(_key(request.client_order_id))

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        known = await self.find_order(request)
        if known is not None:
            return known
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        report = OrderReport(
            venue_order_id=f"paper-{request.client_order_id}", fills=self._fills(request)
        )
        caches["books"].set(_key(request.client_order_id), report, timeout=ORDER_TTL_S)
        return report

    def _fills(self, request: OrderRequest) -> tuple[FillReport, ...]:
        book = read_book(request.venue, request.market)
        if book is None or not book.get("valid") or book_age_s(book) > self.max_book_age_s:
            return ()
        # Liquidity our own earlier orders took from this same snapshot is gone.
        used_key = f"paper-used:{request.venue}:{request.market}:{book['published_ts']}"
        used = caches["books"].get(used_key) or {}
        side = "asks" if request.side == "buy" else "bids"
        levels = [(p, s - used.get(f"{side}:{p}", 0)) for p, s in book[side]]
        taken = take_levels(
            [(p, s) for p, s in levels if s > 0],
            side=request.side,
            amount=request.amount,
            limit=request.limit_price,
        )
        for price, amount in taken:
            used[f"{side}:{price}"] = used.get(f"{side}:{price}", 0) + amount
        caches["books"].set(used_key, used, timeout=ORDER_TTL_S)
        return tuple(
            FillReport(price=p, amount=a, fee=taker_fee(p * a, request.taker_fee_bps))
            for p, a in taken
        )
