"""Placing orders at the venues: which venue takes them, their ids and requests, both at once.

A venue's answer is recorded at once (settlement); an order whose fate the venue could not tell
stays submitted for `recover_trades`, which finds it by its client order id. How long each venue
took to answer is kept on the order and observed in `ACK_LATENCY`.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine

from prometheus_client import Histogram

from markets.models import Exchange, Listing, Market
from markets.rules import TradingRule
from markets.venues.live import live_venue
from markets.venues.orders import OrderReport, OrderRequest, OrderUnknown, Venue
from portfolio.models import Mode
from risk.models import RiskProfile
from trading.execution.paper import PaperVenue
from trading.execution.settlement import record_or_flag
from trading.execution.sizing import Grid
from trading.models import Order, Trade

log = logging.getLogger(__name__)

VenueFor = Callable[[Exchange, str, RiskProfile], Venue]

# Observed by the process that sends the orders; served by the default registry (the engine's
# own metrics port) and the web's /metrics (arbsite.metrics). Embedded (`run_desk`, tasks run
# in-process) that is one process for every order.
ACK_LATENCY = Histogram(
    "arb_order_ack_seconds",
    "Time from sending an order to the venue's answer",
    ["venue", "mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def default_venue(exchange: Exchange, mode: str, profile: RiskProfile) -> Venue:
    """The paper venue, or `exchange`'s live venue: `markets.venues.live.NotTradable` when it has no
    orders module to trade live through."""
    if mode == Mode.LIVE:
        return live_venue(exchange)
    return PaperVenue(max_book_age_s=profile.max_book_age_ms / 1000)


def rule_of(exchange: Exchange, market: Market) -> TradingRule | None:
    """The venue's trading rule for `market`, read once for a trade; None when it does not
    list it."""
    listing = Listing.objects.filter(exchange=exchange, market=market).first()
    return listing.trading_rule() if listing else None


def grid_in(rule: TradingRule | None) -> Grid:
    """The sizing grid of `rule`; no tick, lot or minimum for a venue that does not list it."""
    if rule is None:
        return Grid()
    return Grid(rule.tick, rule.lot, rule.min_notional, rule.min_size)


def grid_of(exchange: Exchange, market: Market) -> Grid:
    """The venue's grid for `market`; no tick, lot or minimum when it does not list it."""
    return grid_in(rule_of(exchange, market))


def client_order_id(trade: Trade, leg: str) -> str:
    """The id the venue knows one of `trade`'s orders by: `arb-<trade>-<created>-<leg>`.

    Derived from the trade alone, so a retried task finds the order it placed. The creation
    time (milliseconds, in hex) keeps it unique when trade numbers start again on a new or
    restored database, while the venue (or the paper venue's cache) still holds the orders of
    the trades numbered so before: their fills must never be taken for a new trade's. Within
    Binance's 36 characters up to trade 9,999,999,999.
    """
    return f"arb-{trade.pk}-{int(trade.created_at.timestamp() * 1000):x}-{leg}"


def order_request(order: Order) -> OrderRequest:
    """`order` as the venue interface takes it, under the venue's own symbol for its market."""
    market = order.trade.opportunity.market
    listing = Listing.objects.filter(exchange=order.exchange, market=market).first()
    return OrderRequest(
        client_order_id=order.client_order_id,
        venue=order.exchange.slug,
        market=market.symbol,
        venue_symbol=listing.venue_symbol if listing else market.symbol,
        side=order.side,
        amount=order.amount,
        limit_price=order.limit_price,
        taker_fee_bps=order.exchange.taker_fee_bps,
    )


def call_venues(calls: list[Coroutine]) -> list[OrderReport | BaseException | None]:
    """Run the venue calls together; each result is its answer or the exception it raised."""

    async def run():
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(run())


async def timed(call: Coroutine) -> tuple[float, OrderReport | Exception]:
    """`call`'s answer, or the exception it raised, and how long it took in ms."""
    start = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        result = exc
    return (time.perf_counter() - start) * 1000, result


def place_orders(*, orders: list[Order], venues: list[Venue]) -> None:
    """Send `orders` (already SUBMITTED) to their `venues` at once and record every answer,
    with the time each venue took to give it."""
    requests = [order_request(o) for o in orders]
    answers = call_venues([timed(v.place_ioc(r)) for v, r in zip(venues, requests, strict=True)])
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer  # the worker is going down: leave the orders for recover_trades
    results = []
    for order, (ack_ms, result) in zip(orders, answers, strict=True):
        # A failure counts with the time it took: a venue that times out is slow, not silent.
        order.ack_ms = ack_ms
        ACK_LATENCY.labels(venue=order.exchange.slug, mode=order.trade.mode).observe(ack_ms / 1000)
        results.append(result)
    Order.objects.bulk_update(orders, ["ack_ms"])
    for order, result in zip(orders, results, strict=True):
        if isinstance(result, Exception):
            # Not an answer: the order may have reached the venue (an answer the client could
            # not read, say), so it is not recorded as refused, which would hedge or unwind the
            # other leg against a fill the venue did make. It stays submitted, with why on its
            # page, until recover_trades looks it up by its client order id.
            if isinstance(result, OrderUnknown):
                log.warning("order %s left for recovery: %s", order.client_order_id, result)
                note = f"left for recovery: {result}"
            else:
                log.error("order %s left for recovery: %r", order.client_order_id, result)
                note = f"left for recovery: {type(result).__name__}: {result}"
            Order.objects.filter(pk=order.pk).update(error=note[:200])
            continue
        record_or_flag(order, result)
