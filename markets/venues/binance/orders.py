"""Live venue: immediate-or-cancel limit orders on Binance spot's REST API via ccxt's async client.

An order is looked up by its client order id (from the trade and leg) before it is placed and
whenever an answer leaves its fate unknown, so a retry never places a second order.
"""

import json
import logging
import time
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from markets.money import money, plain, taker_fee
from markets.venues.ccxt_orders import ask, find_once, place_once, refused, settle_unknown
from markets.venues.orders import (
    FeeTier,
    FillReport,
    KeyedVenue,
    KeyRights,
    OpenOrder,
    OrderReport,
    OrderRequest,
    OrderUnknown,
    skew,
    whole,
)

log = logging.getLogger(__name__)

# The parts of a symbol's commission that add up to what a fill pays (account/commission).
COMMISSIONS = ("standardCommission", "specialCommission", "taxCommission")
# The apiRestrictions switches that let a key move funds between accounts or to others.
TRANSFERS = ("enableInternalTransfer", "permitsUniversalTransfer")
# An order's statuses while it may still fill (the rest, FILLED, CANCELED, EXPIRED, REJECTED,
# EXPIRED_IN_MATCH, are final).
UNFINISHED = frozenset({"NEW", "PENDING_NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"})


class LiveVenue(KeyedVenue):
    """One venue that speaks Binance spot's REST API (binance.com, its testnet, or a stand-in)."""

    def _client(self) -> ccxt.binance:
        client = ccxt.binance(
            {
                "apiKey": self.api_key,
                "secret": self.secret,
                "timeout": self.timeout_ms,
                "enableRateLimit": False,
                # The venue drops a request older than this on arrival, so once the client
                # has timed out an order the venue has not recorded never will be.
                "options": {"recvWindow": self.timeout_ms},
            }
        )
        if self.api_url:
            # Every API section at the override, keeping the section's path (/api/v3, /sapi/v1).
            client.urls["api"] = {
                name: self.api_url + urlsplit(url).path for name, url in client.urls["api"].items()
            }
        return client

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        return await find_once(self._client(), request, _lookup)

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        return await place_once(
            self._client(), request, lookup=_lookup, place=_place, message=_message
        )

    async def fetch_fees(self, venue_symbols: list[str]) -> FeeTier:
        async def fees(client: ccxt.binance) -> FeeTier:
            rates = [
                await client.private_get_account_commission({"symbol": s}) for s in venue_symbols
            ]
            return FeeTier(
                taker_bps=max(_rate(r, "taker") for r in rates) * 10_000,
                maker_bps=max(_rate(r, "maker") for r in rates) * 10_000,
            )

        return await ask(self._client(), fees, _message)

    async def fetch_balances(self) -> dict[str, Decimal]:
        async def balances(client: ccxt.binance) -> dict[str, Decimal]:
            account = await client.private_get_account({"omitZeroBalances": "true"})
            return {
                b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]
            }

        return await ask(self._client(), balances, _message)

    async def fetch_open_orders(self) -> list[OpenOrder]:
        async def open_orders(client: ccxt.binance) -> list[OpenOrder]:
            return [
                OpenOrder(
                    venue_order_id=str(o["orderId"]),
                    client_order_id=o["clientOrderId"],
                    venue_symbol=o["symbol"],
                    side=o["side"].lower(),
                    amount=Decimal(o["origQty"]) - Decimal(o["executedQty"]),
                    price=Decimal(o["price"]),
                )
                for o in await client.private_get_openorders()
            ]

        return await ask(self._client(), open_orders, _message)

    async def key_rights(self) -> KeyRights:
        """GET /sapi/v1/account/apiRestrictions: the key's switches as the venue holds them."""

        async def rights(client: ccxt.binance) -> KeyRights:
            flags = await client.sapi_get_account_apirestrictions()
            return KeyRights(
                trade=flags["enableSpotAndMarginTrading"] is True,
                withdraw=flags["enableWithdrawals"] is True,
                transfer=any(flags.get(name) is True for name in TRANSFERS),
                stated=", ".join(
                    f"{name}={str(flags.get(name, False)).lower()}"
                    for name in ("enableSpotAndMarginTrading", "enableWithdrawals", *TRANSFERS)
                ),
            )

        return await ask(self._client(), rights, _message)

    async def clock_skew(self) -> float:
        async def clock(client: ccxt.binance) -> float:
            sent = time.time()
            answer = await client.public_get_time()
            return skew(int(answer["serverTime"]) / 1000, sent, time.time())

        return await ask(self._client(), clock, _message)


def _rate(commission: dict, side: str) -> Decimal:
    """A symbol's whole commission rate for the taker or maker side, as a fraction."""
    parts = (Decimal(commission[part][side]) for part in COMMISSIONS if part in commission)
    return sum(parts, Decimal(0))


async def _place(client: ccxt.binance, request: OrderRequest) -> OrderReport:
    params = {
        "symbol": request.venue_symbol,
        "side": request.side.upper(),
        "type": "LIMIT",
        "timeInForce": "IOC",
        "quantity": plain(request.amount),
        "price": plain(request.limit_price),
        "newClientOrderId": request.client_order_id,
        "newOrderRespType": "FULL",
    }
    try:
        response = await client.private_post_order(params)
    except ccxt.InvalidOrder as exc:
        if "Duplicate order sent" not in str(exc):
            return refused(exc, _message)
        return await settle_unknown(client, request, exc, lookup=_lookup, message=_message)
    except ccxt.OperationFailed as exc:
        # A timeout or a lost answer: the venue may have the order.
        return await settle_unknown(client, request, exc, lookup=_lookup, message=_message)
    except ccxt.ExchangeError as exc:
        return refused(exc, _message)
    return _report(response, response.get("fills") or [], request)


async def _lookup(client: ccxt.binance, request: OrderRequest) -> OrderReport | None:
    try:
        order = await client.private_get_order(
            {"symbol": request.venue_symbol, "origClientOrderId": request.client_order_id}
        )
    except ccxt.OrderNotFound:
        return None
    if order["status"] in UNFINISHED:
        # Its fills so far are not its fate: what is left may still fill.
        raise OrderUnknown(f"{request.client_order_id}: still {order['status']} at the venue")
    executed = Decimal(order["executedQty"])
    if not executed:
        return _report(order, [], request)
    try:
        fills = await client.private_get_mytrades(
            {"symbol": request.venue_symbol, "orderId": order["orderId"]}
        )
    except ccxt.BaseError as exc:
        # The venue has the order: it must not read as refused, so leave it for recovery.
        raise OrderUnknown(f"{request.client_order_id}: fills unread: {_message(exc)}") from exc
    return whole(_report(order, fills, request), executed, request, "executed")


def _report(order: dict, fills: list[dict], request: OrderRequest) -> OrderReport:
    """The venue's order and fills as strings, taken to Decimal exactly."""
    return OrderReport(
        venue_order_id=str(order["orderId"]),
        fills=tuple(_fill_report(f, request) for f in fills),
    )


def _fill_report(fill: dict, request: OrderRequest) -> FillReport:
    """One of the venue's fills, its commission in the asset it was taken in and valued in quote."""
    price, amount = Decimal(fill["price"]), Decimal(fill["qty"])
    commission, asset = Decimal(fill["commission"]), fill["commissionAsset"]
    base = request.market.split("-")[0]
    if request.venue_symbol.endswith(asset) and asset != base:
        return FillReport(price, amount, commission)
    if asset == base:
        # Taken from the base bought: the account gets that much less base; worth it at the price.
        return FillReport(price, amount, money(commission * price), base, commission)
    # Taken in a third asset (BNB): booked in it; PnL counts the tier's fee, as its quote price
    # is not known here.
    log.warning("order %s: commission in %s", request.client_order_id, asset)
    fee = taker_fee(price * amount, request.taker_fee_bps)
    return FillReport(price, amount, fee, asset, commission)


def _message(exc: ccxt.BaseError) -> str:
    """The venue's own message from a ccxt error: the body ccxt appends, `{"code":..,"msg":..}`.

    ccxt writes "binance {...}", or its own advice first for some codes ("order price is
    invalid, ... {"code":-1013,"msg":"Filter failure: PRICE_FILTER"}"): the venue's words are
    what a desk can act on.
    """
    text = str(exc).removeprefix("binance ").strip()
    try:
        return str(json.loads(text[text.rfind("{") :])["msg"])
    except (ValueError, TypeError, KeyError):
        return text
