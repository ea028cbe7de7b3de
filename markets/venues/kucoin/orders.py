"""Live venue: immediate-or-cancel limit orders on KuCoin spot's high-frequency (HF) REST API via
ccxt's async client, signed with key version 2 (the passphrase sent as its HMAC).

An order goes out under our client order id as its `clientOid`, is looked up by it before it is
placed and whenever an answer leaves its fate unknown, so a retry never places a second order.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from decimal import Decimal

import ccxt.async_support as ccxt

from markets.money import BPS, ZERO, money, plain, taker_fee
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

# KuCoin takes letters, digits, "_" and "-", at most 40 of them; ours fit (checked before sending).
CLIENT_OID = re.compile(r"\A[A-Za-z0-9_-]{1,40}\Z")
FEE_SYMBOLS_MAX = 10  # GET /api/v1/trade-fees takes at most 10 symbols a call
FILLS_PAGE = 100  # GET /api/v1/hf/fills gives 20 a page unless asked, at most 100
DUPLICATE = "clientOidDuplicated"
# KuCoin keeps a finished order findable by its clientOid for this long, and its fills too.
RETENTION_S = 3 * 24 * 3600
# Our client order ids carry the trade's creation time: `arb-<trade>-<created ms, hex>-<leg>`.
CREATED = re.compile(r"\Aarb-\d+-([0-9a-f]+)-")
RETENTION_MARGIN_S = 3600  # clocks and the time between a trade's creation and its order


def sign(secret: str, text: str) -> str:
    """KuCoin's signature of `text`: base64(HMAC-SHA256(secret, text)). The request is signed as
    timestamp + METHOD + endpoint with its query + body; key version 2 sends the passphrase so."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class LiveVenue(KeyedVenue):
    """One venue that speaks KuCoin spot's HF REST API (api.kucoin.com or a stand-in). A real
    KuCoin key has a passphrase; the venue refuses a wrong one."""

    def _client(self) -> ccxt.kucoin:
        client = ccxt.kucoin(
            {
                "apiKey": self.api_key,
                "secret": self.secret,
                "password": self.passphrase,
                "timeout": self.timeout_ms,
                "enableRateLimit": False,
                # ccxt tags orders with its own broker id unless told not to: ours go untagged.
                "options": {"partner": {}},
            }
        )
        if self.api_url:
            client.urls["api"] = {
                **client.urls["api"],
                "public": self.api_url,
                "private": self.api_url,
            }
        return client

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        return await find_once(self._client(), request, _lookup)

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        if not CLIENT_OID.match(request.client_order_id):
            return OrderReport(
                "", error=f"client order id {request.client_order_id!r} is no clientOid"
            )
        return await place_once(
            self._client(), request, lookup=_lookup, place=_place, message=_message
        )

    async def fetch_fees(self, venue_symbols: list[str]) -> FeeTier:
        """The highest taker and maker rate of the account over `venue_symbols`, in bps."""

        async def fees(client: ccxt.kucoin) -> FeeTier:
            rates = []
            for at in range(0, len(venue_symbols), FEE_SYMBOLS_MAX):
                batch = ",".join(venue_symbols[at : at + FEE_SYMBOLS_MAX])
                rates += _data(await client.private_get_trade_fees({"symbols": batch}))
            if not rates:
                raise ccxt.BadResponse(f"kucoin: no fee rates for {venue_symbols}")
            return FeeTier(
                taker_bps=max(Decimal(r["takerFeeRate"]) for r in rates) * BPS,
                maker_bps=max(Decimal(r["makerFeeRate"]) for r in rates) * BPS,
            )

        return await ask(self._client(), fees, _message)

    async def fetch_balances(self) -> dict[str, Decimal]:
        """The trading account's holdings by currency: available plus held (`balance`)."""

        async def balances(client: ccxt.kucoin) -> dict[str, Decimal]:
            held: dict[str, Decimal] = {}
            for account in _data(await client.private_get_accounts({"type": "trade"})):
                currency = account["currency"]
                held[currency] = held.get(currency, ZERO) + Decimal(account["balance"])
            return held

        return await ask(self._client(), balances, _message)

    async def key_rights(self) -> KeyRights:
        """GET /api/v1/user/api-key: the key's permissions as KuCoin lists them."""

        async def rights(client: ccxt.kucoin) -> KeyRights:
            stated = str(_data(await client.private_get_user_api_key())["permission"])
            granted = {p.strip() for p in stated.split(",")}
            return KeyRights(
                trade="Spot" in granted,
                withdraw="Withdrawal" in granted,
                transfer=bool(granted & {"InnerTransfer", "Transfer"}),
                stated=f"permission={stated}",
            )

        return await ask(self._client(), rights, _message)

    async def clock_skew(self) -> float:
        async def clock(client: ccxt.kucoin) -> float:
            sent = time.time()
            answer = await client.public_get_timestamp()
            return skew(int(_data(answer)) / 1000, sent, time.time())

        return await ask(self._client(), clock, _message)

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """Every symbol with active HF orders, then each symbol's active orders."""

        async def open_orders(client: ccxt.kucoin) -> list[OpenOrder]:
            listed = _data(await client.private_get_hf_orders_active_symbols())
            resting = []
            for symbol in listed.get("symbols") or []:
                orders = _data(await client.private_get_hf_orders_active({"symbol": symbol}))
                resting += [
                    OpenOrder(
                        venue_order_id=o["id"],
                        client_order_id=o.get("clientOid") or "",
                        venue_symbol=o["symbol"],
                        side=o["side"],
                        amount=Decimal(o["size"]) - Decimal(o["dealSize"]),
                        price=Decimal(o["price"]),
                    )
                    for o in orders
                ]
            return resting

        return await ask(self._client(), open_orders, _message)


def _data(answer: object) -> list | dict | int:
    """The `data` of a KuCoin answer; ccxt has already raised on an error code."""
    if not isinstance(answer, dict) or answer.get("code") != "200000" or "data" not in answer:
        raise ccxt.BadResponse(f"kucoin unreadable answer: {str(answer)[:120]}")
    return answer["data"]


async def _place(client: ccxt.kucoin, request: OrderRequest) -> OrderReport:
    params = {
        "clientOid": request.client_order_id,
        "symbol": request.venue_symbol,
        "type": "limit",
        "side": request.side,
        "price": plain(request.limit_price),
        "size": plain(request.amount),
        "timeInForce": "IOC",
    }
    try:
        placed = _data(await client.private_post_hf_orders(params))
    except ccxt.OperationFailed as exc:
        # A timeout, a lost or unreadable answer, an unavailable service: it may have the order.
        return await settle_unknown(client, request, exc, lookup=_lookup, message=_message)
    except ccxt.ExchangeError as exc:
        if DUPLICATE in str(exc):
            return await settle_unknown(client, request, exc, lookup=_lookup, message=_message)
        return refused(exc, _message)
    # The answer names the order but not its fills: those come from the lookup.
    order_id = placed.get("orderId") if isinstance(placed, dict) else None
    try:
        known = await _lookup(client, request)
    except ccxt.BaseError as exc:
        raise OrderUnknown(
            f"{request.client_order_id}: placed as {order_id}: {_message(exc)}"
        ) from exc
    if known is None:
        raise OrderUnknown(f"{request.client_order_id}: placed as {order_id} but not found")
    return known


async def _lookup(client: ccxt.kucoin, request: OrderRequest) -> OrderReport | None:
    """The order sent under `request`'s clientOid with its fills (found so for 3 x 24 h only)."""
    try:
        answer = await client.private_get_hf_orders_client_order_clientoid(
            {"clientOid": request.client_order_id, "symbol": request.venue_symbol}
        )
    except ccxt.OrderNotFound:
        return _not_found(request)
    order = _data(answer)
    if not order:
        return _not_found(request)
    if order.get("active"):
        # An IOC order is done at once; one still active has fills to come: not settled yet.
        raise OrderUnknown(f"{request.client_order_id}: still active at the venue")
    dealt = Decimal(order["dealSize"])
    if not dealt:
        return OrderReport(str(order["id"]))
    try:
        fills = await _fills(client, request.venue_symbol, str(order["id"]))
    except (ccxt.BaseError, KeyError, TypeError, ValueError) as exc:
        # The venue has the order: it must not read as refused, so leave it for recovery.
        raise OrderUnknown(f"{request.client_order_id}: fills unread: {exc}") from exc
    report = OrderReport(str(order["id"]), fills=tuple(_fill_report(f, request) for f in fills))
    return whole(report, dealt, request, "dealt")


async def _fills(client: ccxt.kucoin, symbol: str, order_id: str) -> list[dict]:
    """Every fill of the order, oldest first: the symbol's fills listing narrowed to the order,
    the only source of each fill's fee. KuCoin lists them newest first, FILLS_PAGE at most a
    page, each page after the one ending at `lastId`."""
    fills: list[dict] = []
    query = {"symbol": symbol, "orderId": order_id, "limit": FILLS_PAGE}
    while True:
        page = _data(await client.private_get_hf_fills(query))
        fills += page["items"]
        last = page.get("lastId")
        if len(page["items"]) < FILLS_PAGE or not last or last == query.get("lastId"):
            return sorted(fills, key=lambda f: int(f["id"]))
        query = {**query, "lastId": last}


def _not_found(request: OrderRequest) -> None:
    """None: the venue never got the order; unless the order may be older than KuCoin keeps
    finished ones, when "not found" proves nothing. Neither the clientOid nor the symbol's fills
    (which name no clientOid, and are kept as long) can then tell: a person must check."""
    created = CREATED.match(request.client_order_id)
    if created is None:
        return None
    age = time.time() - int(created[1], 16) / 1000
    if age > RETENTION_S - RETENTION_MARGIN_S:
        raise OrderUnknown(
            f"{request.client_order_id}: not found, but older than the 3 x 24 h KuCoin keeps "
            "finished orders: check its fate in the venue's order history"
        )
    return None


def _fill_report(fill: dict, request: OrderRequest) -> FillReport:
    """One fill, its fee in the `feeCurrency` it was taken in and valued in quote."""
    price, amount, fee = Decimal(fill["price"]), Decimal(fill["size"]), Decimal(fill["fee"])
    base, quote = request.venue_symbol.split("-")
    asset = fill["feeCurrency"]
    if asset == quote:
        return FillReport(price, amount, fee)
    if asset == base:
        return FillReport(price, amount, money(fee * price), base, fee)
    # Taken in a third currency (KCS): booked in it; PnL counts the tier's fee, as its quote
    # price is not known here.
    log.warning("order %s: fee in %s", request.client_order_id, asset)
    return FillReport(price, amount, taker_fee(price * amount, request.taker_fee_bps), asset, fee)


def _message(exc: ccxt.BaseError) -> str:
    """KuCoin's own words from a ccxt error ("kucoin {"code":"200004","msg":"..."}")."""
    text = str(exc).removeprefix("kucoin ").strip()
    try:
        body = json.loads(text[text.find("{") :])
        return f"{body['msg']} ({body['code']})"
    except (ValueError, TypeError, KeyError):
        return text
