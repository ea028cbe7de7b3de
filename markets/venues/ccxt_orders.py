"""What the venues spoken to through ccxt share: an order is looked up by its client order id
before it is placed, and again when an answer is lost, so a retry never places it twice."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt

from markets.venues.orders import OrderReport, OrderRequest, OrderUnknown, VenueError

log = logging.getLogger(__name__)

# Lookups after an unanswered order before it is left to `recover_trades`.
LOOKUPS = 2

Lookup = Callable[[Any, OrderRequest], Awaitable[OrderReport | None]]
Place = Callable[[Any, OrderRequest], Awaitable[OrderReport]]
Message = Callable[[ccxt.BaseError], str]


async def ask[T](client: Any, question: Callable[[Any], Awaitable[T]], message: Message) -> T:
    """One question about the account on a client closed afterwards; VenueError in the venue's
    words if it does not answer, or answers what cannot be read."""
    try:
        return await question(client)
    except ccxt.BaseError as exc:
        raise VenueError(f"{type(exc).__name__}: {message(exc)}"[:200]) from exc
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        raise VenueError(f"unreadable answer: {type(exc).__name__}: {exc}"[:200]) from exc
    finally:
        await client.close()


async def find_once(client: Any, request: OrderRequest, lookup: Lookup) -> OrderReport | None:
    """The venue's record of `request`, on a client closed afterwards."""
    try:
        return await lookup(client, request)
    finally:
        await client.close()


async def place_once(
    client: Any, request: OrderRequest, *, lookup: Lookup, place: Place, message: Message
) -> OrderReport:
    """Place `request` unless the venue already has its client order id; close the client."""
    try:
        try:
            known = await lookup(client, request)
        except ccxt.BaseError as exc:
            return refused(exc, message)  # nothing was sent
        if known is not None:
            return known
        return await place(client, request)
    finally:
        await client.close()


async def settle_unknown(
    client: Any, request: OrderRequest, cause: ccxt.BaseError, *, lookup: Lookup, message: Message
) -> OrderReport:
    """The venue's record of an order whose answer was lost; OrderUnknown if it cannot say."""
    log.warning("order %s: %s; looking it up", request.client_order_id, message(cause))
    for _ in range(LOOKUPS):
        try:
            known = await lookup(client, request)
        except ccxt.OperationFailed:
            continue
        if known is not None:
            return known
        return OrderReport("", error=f"{message(cause)}; the venue has no such order"[:200])
    raise OrderUnknown(f"{request.client_order_id}: {message(cause)}; lookups failed")


def refused(exc: ccxt.BaseError, message: Message) -> OrderReport:
    """A refusal in the venue's own words."""
    return OrderReport("", error=f"{type(exc).__name__}: {message(exc)}"[:200])
