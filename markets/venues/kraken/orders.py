"""Live venue: immediate-or-cancel limit orders on Kraken spot's REST API via ccxt's async client.

An order goes out under a UUID derived from our client order id, is looked up by it before it is
placed and whenever an answer leaves its fate unknown, so a retry never places a second order.
Every private call is signed with a nonce from a counter shared by all processes using the key.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import ccxt.async_support as ccxt
from django.db import connections

from markets.models import ExchangeCredential
from markets.money import plain
from markets.venues.ccxt_orders import ask, find_once, place_once, refused, settle_unknown
from markets.venues.orders import (
    FeeTier,
    FillReport,
    KeyedVenue,
    OpenOrder,
    OrderReport,
    OrderRequest,
    OrderUnknown,
    skew,
    whole,
)

log = logging.getLogger(__name__)

# Kraken takes a UUID or at most 18 characters as cl_ord_id; ours are longer, so each maps to
# the UUID5 of itself under this namespace: the same id always goes out as the same UUID.
CL_ORD_NAMESPACE = uuid.UUID("6f1c3d2e-8a4b-5c7d-9e0f-1a2b3c4d5e6f")
# How far back ClosedOrders is searched: recovery runs within minutes of an order.
LOOKBACK = timedelta(days=7)
QUERY_TRADES_MAX = 20
# The statuses of an order that is done: anything else (open, pending) may fill further.
DONE = {"closed", "canceled", "expired"}
# Kraken's REST pair names keep its legacy asset codes (XBTUSD, XDGUSD).
REST_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}
# Its balance codes for assets it listed first (XXBT, ZUSD), by the desk's names. XTZ, XRP and
# ZEC are real codes too, so a table and not the stripping of a prefix.
BALANCE_CODES = {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "EUR": "ZEUR", "DOGE": "XXDG"}
DESK_ASSETS = {code: asset for asset, code in BALANCE_CODES.items()} | {"XBT": "BTC"}

Nonces = Callable[[], Awaitable[int]]


def cl_ord_id(client_order_id: str) -> str:
    """The UUID our `client_order_id` goes out as."""
    return str(uuid.uuid5(CL_ORD_NAMESPACE, client_order_id))


def rest_pair(venue_symbol: str) -> str:
    """The REST altname of a WebSocket v2 symbol: BTC/USD -> XBTUSD."""
    return "".join(REST_ASSETS.get(asset, asset) for asset in venue_symbol.split("/"))


def local_nonces() -> Nonces:
    """Nonces rising within this process only: for a key no other process signs with."""
    last = 0

    async def next_nonce() -> int:
        nonlocal last
        last = max(last + 1, time.time_ns() // 1_000_000)
        return last

    return next_nonce


def shared_nonces(credential: ExchangeCredential) -> Nonces:
    """Nonces from the credential's row: rising across every process that signs with the key.

    Each is drawn on a thread of its own, with a connection of its own closed after it: the
    caller may itself be running in Django's one thread for sync work (the engine's execution),
    which a thread-sensitive call from this event loop would wait on forever."""

    def draw() -> int:
        try:
            return credential.next_nonce(time.time_ns() // 1_000_000)
        finally:
            connections.close_all()

    async def next_nonce() -> int:
        return await asyncio.to_thread(draw)

    return next_nonce


class LiveVenue(KeyedVenue):
    """One venue that speaks Kraken spot's REST API (api.kraken.com or a stand-in)."""

    def __init__(self, *, nonces: Nonces | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.nonces = nonces or local_nonces()

    @classmethod
    def from_credential(cls, credential: ExchangeCredential) -> dict:
        """The nonce counter shared by every process signing with this key."""
        return {"nonces": shared_nonces(credential)}

    def _client(self) -> "_Client":
        client = _Client(
            {
                "apiKey": self.api_key,
                "secret": self.secret,
                "timeout": self.timeout_ms,
                "enableRateLimit": False,
            }
        )
        client.nonces = self.nonces
        if self.api_url:
            client.urls["api"] = {"public": self.api_url, "private": self.api_url}
        return client

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        return await find_once(self._client(), request, _lookup)

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        place = partial(_place, timeout_ms=self.timeout_ms)
        return await place_once(
            self._client(), request, lookup=_lookup, place=place, message=_message
        )

    async def fetch_fees(self, venue_symbols: list[str]) -> FeeTier:
        async def fees(client: _Client) -> FeeTier:
            pairs = ",".join(rest_pair(s) for s in venue_symbols)
            volume = await client.private("private_post_tradevolume", {"pair": pairs})
            # Percent of the quote volume, per pair: "0.2600" is 26 bps.
            return FeeTier(
                taker_bps=max(Decimal(f["fee"]) for f in volume["fees"].values()) * 100,
                maker_bps=max(Decimal(f["fee"]) for f in volume["fees_maker"].values()) * 100,
            )

        return await ask(self._client(), fees, _message)

    async def fetch_balances(self) -> dict[str, Decimal]:
        async def balances(client: _Client) -> dict[str, Decimal]:
            held = await client.private("private_post_balance", {})
            # Codes with a suffix (XBT.F, USD.HOLD) are Kraken's earn and hold wallets, which
            # spot orders do not draw on.
            return {
                DESK_ASSETS.get(code, code): Decimal(amount)
                for code, amount in held.items()
                if "." not in code
            }

        return await ask(self._client(), balances, _message)

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """Kraken names the pair by its REST altname and the client id as sent (our UUIDs)."""

        async def open_orders(client: _Client) -> list[OpenOrder]:
            listed = (await client.private("private_post_openorders", {})).get("open") or {}
            return [
                OpenOrder(
                    venue_order_id=txid,
                    client_order_id=order.get("cl_ord_id") or "",
                    venue_symbol=order["descr"]["pair"],
                    side=order["descr"]["type"],
                    amount=Decimal(order["vol"]) - Decimal(order["vol_exec"]),
                    price=Decimal(order["descr"]["price"]),
                )
                for txid, order in listed.items()
            ]

        return await ask(self._client(), open_orders, _message)

    async def key_rights(self) -> None:
        """Kraken has no call that tells a key's permissions."""
        return None

    async def clock_skew(self) -> float:
        async def clock(client: _Client) -> float:
            sent = time.time()
            answer = await client.public_get_time()
            # Whole seconds: the middle of the second it names is at most half a second off.
            return skew(int(answer["result"]["unixtime"]) + 0.5, sent, time.time())

        return await ask(self._client(), clock, _message)


class _Client(ccxt.kraken):
    """ccxt's Kraken, signing each private call with the next nonce of the shared counter."""

    nonces: Nonces

    async def private(self, method: str, params: dict) -> dict:
        """The `result` of one private call; a Kraken error raises as ccxt maps it."""
        nonce = await self.nonces()
        # ccxt's sign() takes its nonce from here, synchronously; a client makes one call at a
        # time, so it signs with the nonce just drawn from the counter.
        self.incrementing_nonce = lambda: nonce
        response = await getattr(self, method)(params)
        if not isinstance(response, dict) or not isinstance(response.get("result"), dict):
            raise ccxt.BadResponse(f"kraken unreadable answer: {str(response)[:120]}")
        return response["result"]


async def _place(client: _Client, request: OrderRequest, timeout_ms: int) -> OrderReport:
    # Past the deadline the engine rejects the order, so a request the client gave up on
    # executes only if it reached the engine in time.
    wait = min(max(timeout_ms / 1000, 2), 60)
    deadline = datetime.now(UTC) + timedelta(seconds=wait)
    params = {
        "ordertype": "limit",
        "type": request.side,
        "pair": rest_pair(request.venue_symbol),
        "volume": plain(request.amount),
        "price": plain(request.limit_price),
        "timeinforce": "IOC",
        "oflags": "fciq",  # the fee in quote, on sells too
        "cl_ord_id": cl_ord_id(request.client_order_id),
        "deadline": deadline.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    try:
        placed = await client.private("private_post_addorder", params)
    except ccxt.InvalidNonce as exc:
        return refused(exc, _message)  # Kraken checks the nonce before it takes the order
    except ccxt.OperationFailed as exc:
        # A timeout, a lost or unreadable answer, an unavailable service: it may have the order,
        # and may still take it until the deadline: only a lookup after that says it never will.
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        return await settle_unknown(client, request, exc, lookup=_lookup, message=_message)
    except ccxt.ExchangeError as exc:
        return refused(exc, _message)
    # The answer names the order but not its fills: those come from the lookup.
    txid = ",".join(placed.get("txid") or [])
    try:
        known = await _lookup(client, request)
    except ccxt.BaseError as exc:
        raise OrderUnknown(f"{request.client_order_id}: placed as {txid}: {_message(exc)}") from exc
    if known is None:
        raise OrderUnknown(f"{request.client_order_id}: placed as {txid} but not found")
    return known


async def _lookup(client: _Client, request: OrderRequest) -> OrderReport | None:
    """The order sent under `request`'s cl_ord_id, open or closed, with its fills."""
    wanted = {"cl_ord_id": cl_ord_id(request.client_order_id), "trades": "true"}
    orders = (await client.private("private_post_openorders", wanted)).get("open") or {}
    if not orders:
        start = int((datetime.now(UTC) - LOOKBACK).timestamp())
        closed = await client.private("private_post_closedorders", {**wanted, "start": start})
        orders = closed.get("closed") or {}
    if not orders:
        return None
    txid, order = next(iter(orders.items()))
    if order.get("status") not in DONE:
        # An IOC order is done at once; one still open (or pending) has fills to come.
        raise OrderUnknown(f"{request.client_order_id}: {order.get('status')} at the venue")
    executed = Decimal(order.get("vol_exec") or 0)
    if not executed:
        return OrderReport(txid)
    trade_ids = order.get("trades") or []
    try:
        trades = {}
        for at in range(0, len(trade_ids), QUERY_TRADES_MAX):
            batch = ",".join(trade_ids[at : at + QUERY_TRADES_MAX])
            trades |= await client.private("private_post_querytrades", {"txid": batch})
    except ccxt.BaseError as exc:
        # The venue has the order: it must not read as refused, so leave it for recovery.
        raise OrderUnknown(f"{request.client_order_id}: fills unread: {_message(exc)}") from exc
    report = OrderReport(txid, fills=tuple(_fill_report(trades[t]) for t in trade_ids))
    return whole(report, executed, request, "executed")


def _fill_report(trade: dict) -> FillReport:
    """One of the venue's trades; oflags=fciq has Kraken take its fee in the quote."""
    return FillReport(Decimal(trade["price"]), Decimal(trade["vol"]), Decimal(trade["fee"]))


def _message(exc: ccxt.BaseError) -> str:
    """Kraken's own words from a ccxt error ("kraken {"error":["EOrder:..."],...}")."""
    text = str(exc).removeprefix("kraken ").strip()
    start = text.find('"error":[')
    if start < 0:
        return text
    return text[start + 9 : text.find("]", start)].replace('"', "") or text
