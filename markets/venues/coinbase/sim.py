"""Coinbase Advanced Trade as the simulated venue serves it: the `level2` and `heartbeats`
channels, one sequence number per connection, and the brokerage order API (ES256 JWTs verified)
whose IOC limit orders fill against the very book the channel publishes."""

import asyncio
import base64
import binascii
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import SimListing, Timing
from markets.simulator.venue import (
    RestAnswer,
    RestFault,
    RestRequest,
    Session,
    SimVenue,
    rfc3339,
)

BROKERAGE = "/api/v3/brokerage"
ORDER_POST = f"POST {BROKERAGE}/orders"
ORDERS_LIST = f"GET {BROKERAGE}/orders/historical/batch"
FILLS_LIST = f"GET {BROKERAGE}/orders/historical/fills"
ACCOUNTS = f"GET {BROKERAGE}/accounts"
FEE_TIER = f"GET {BROKERAGE}/transaction_summary"
KEY_PERMISSIONS = f"GET {BROKERAGE}/key_permissions"
SERVER_TIME = f"GET {BROKERAGE}/time"
PRODUCTS = f"GET {BROKERAGE}/market/products"
FIAT = ("USD", "EUR", "GBP")
ORDER_GET = f"GET {BROKERAGE}/orders/historical/"  # followed by the order id
REST_FAULTS = ("timeout", "slow", "server_error", "lost", "rate_limit", "tradeless")
# Coinbase's 429 (docs.cdp.coinbase.com/coinbase-app/api-architecture/rate-limiting).
RATE_LIMITED = {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}
DUPLICATES = ("existing", "refuse")  # what a re-POST of a known client_order_id gets
ISSUERS = ("cdp", "coinbase-cloud")  # the SDK's and ccxt's
JWT_SECONDS = 120
PLACES = Decimal("0.0000000001")


class Refusal(Exception):
    """A request Coinbase refuses with an HTTP error: its status and body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body)
        self.status, self.body = status, body


class Failure(Exception):
    """An order Coinbase does not create: a `success:false` body with its `error_response`."""

    def __init__(self, reason: str, message: str, preview: str = "") -> None:
        super().__init__(message)
        self.reason, self.message = reason, message
        self.preview = preview or "UNKNOWN_PREVIEW_FAILURE_REASON"


def _text(value: Decimal) -> str:
    """Coinbase's decimal text: plain digits, no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _trimmed(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


class SimCoinbase(SimVenue):
    """Coinbase on `/coinbase`: subscribe within the timeout, a snapshot first, then updates."""

    name = "coinbase"
    malformed = '{"channel":"l2_data","timestamp":"'

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.keys: dict[str, ec.EllipticCurvePublicKey] = {}  # key name -> its public key
        # Per key name, asset -> available; a key without an entry has no limit.
        self.balances: dict[str, dict[str, Decimal]] = {}
        self.taker_fee_bps = Decimal(60)
        self.maker_fee_bps = Decimal(40)
        self.duplicates = "existing"
        self.page_size = 100
        self.listed_after = 0.0  # seconds before a new order shows in the order listing
        self.created: dict[str, float] = {}  # order id -> when, for `listed_after`
        self.orders: dict[str, dict] = {}  # by client order id
        self.owners: dict[str, str] = {}  # order id -> key name
        self.fills: dict[str, list[dict]] = {}  # by order id
        self.posts: Counter[str] = Counter()
        self.can_transfer: set[str] = set()  # key names whose permissions allow moving funds
        self._trade_ids = itertools.count(1)

    def streams(self, path: str) -> bool:
        return path == "/coinbase"

    def open_account(
        self, api_key: str, secret: str, funding: Mapping[str, Decimal], passphrase: str = ""
    ) -> None:
        private = serialization.load_pem_private_key(secret.encode(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError("a Coinbase secret is an EC private key in PEM")
        self.keys[api_key] = private.public_key()
        self.balances[api_key] = dict(funding)

    def holdings(self, api_key: str) -> dict[str, Decimal]:
        return dict(self.balances.get(api_key, {}))

    def hold_order(
        self, api_key: str, symbol: str, *, side: str, price: Decimal, amount: Decimal, cid: str
    ) -> str:
        order_id = str(uuid.uuid4())
        config = {"limit_limit_gtc": {"base_size": _text(amount), "limit_price": _text(price)}}
        self.orders[cid] = {
            "order_id": order_id,
            "product_id": symbol,
            "user_id": api_key,
            "order_configuration": config,
            "side": side.upper(),
            "client_order_id": cid,
            "status": "OPEN",
            "time_in_force": "GOOD_UNTIL_CANCELLED",
            "created_time": rfc3339(6),
            "completion_percentage": "0",
            "filled_size": "0",
            "average_filled_price": "0",
            "number_of_fills": "0",
            "filled_value": "0",
            "total_fees": "0",
            "order_type": "LIMIT",
            "product_type": "SPOT",
            "reject_reason": "",
            "cancel_message": "",
            "last_fill_time": None,
        }
        self.owners[order_id] = api_key
        self.created[order_id] = time.time()
        return order_id

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        tasks = [
            asyncio.create_task(self._close_unless_subscribed(session)),
            asyncio.create_task(self._heartbeats(session)),
        ]
        try:
            async for raw in session.ws:
                self._receive(session, raw)
        finally:
            for task in tasks:
                task.cancel()

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        stamp = rfc3339(9)
        updates = [self._level(book.listing, side, p, q, stamp) for side, p, q in changes]
        events = [{"type": "update", "product_id": book.symbol, "updates": updates}]
        for session in self.sessions:
            if book.symbol in session.subs:
                lost = session.take("gap", book.symbol)
                self._send(session, "l2_data", events, lost=lost)

    def _send(self, session: Session, channel: str, events: list, lost: bool = False) -> None:
        seq, session.seq = session.seq, session.seq + 1
        if lost:  # the number is used up, the message never arrives: a real gap
            return
        envelope = {"channel": channel, "timestamp": rfc3339(9), "sequence_num": seq}
        session.send(json.dumps({**envelope, "events": events}, separators=(",", ":")))

    @staticmethod
    def _level(listing: SimListing, side: str, price: int, lots: int, stamp: str) -> dict:
        return {
            "side": "bid" if side == "bid" else "offer",
            "event_time": stamp,
            "price_level": listing.price_text(price),
            "new_quantity": _trimmed(listing.qty_text(lots)),
        }

    def _receive(self, session: Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind, channel = message["type"], message["channel"]
            products = message.get("product_ids") or []
        except (ValueError, KeyError, TypeError):
            return self._error(session, "malformed subscription message")
        if kind not in ("subscribe", "unsubscribe") or channel not in ("level2", "heartbeats"):
            return self._error(session, f"unsupported {kind!r} on channel {channel!r}")
        unknown = [p for p in products if p not in self.books]
        if unknown:
            self._error(session, f"unknown product ids {unknown}")
        known = [p for p in products if p in self.books]
        session.subscribed = True
        if channel == "heartbeats":
            session.heartbeats = kind == "subscribe"
        elif kind == "subscribe":
            session.subs.update(dict.fromkeys(known, 0))
        else:
            for product in known or list(session.subs):
                session.subs.pop(product, None)
        self._acknowledge(session)
        if channel == "level2" and kind == "subscribe":
            for product in known:
                self._snapshot(session, self.books[product])

    def _acknowledge(self, session: Session) -> None:
        current: dict[str, list[str]] = {}
        if session.subs:
            current["level2"] = list(session.subs)
        if session.heartbeats:
            current["heartbeats"] = ["heartbeats"]
        self._send(session, "subscriptions", [{"subscriptions": current}])

    def _snapshot(self, session: Session, book: VenueBook) -> None:
        # Coinbase stamps snapshot levels with the epoch placeholder, not a real event time.
        epoch = "1970-01-01T00:00:00Z"
        levels = [
            self._level(book.listing, side, p, book.book.side(side)[p], epoch)
            for side in ("bid", "ask")
            for p in best_first(book.book.side(side), side)
        ]
        events = [{"type": "snapshot", "product_id": book.symbol, "updates": levels}]
        self._send(session, "l2_data", events)

    @staticmethod
    def _error(session: Session, message: str) -> None:
        session.send(json.dumps({"type": "error", "message": message}))

    async def _close_unless_subscribed(self, session: Session) -> None:
        await asyncio.sleep(self.timing.subscribe_timeout)
        if not session.subscribed:
            await session.ws.close(1008, "subscribe within 5 seconds")

    async def _heartbeats(self, session: Session) -> None:
        counter = 0
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            if session.heartbeats:
                counter += 1
                event = {"current_time": self._go_time(), "heartbeat_counter": counter}
                self._send(session, "heartbeats", [event])

    @staticmethod
    def _go_time() -> str:
        # Coinbase prints Go's time.Time here, monotonic clock reading included.
        stamp = rfc3339(9).replace("T", " ").removesuffix("Z")
        return f"{stamp} +0000 UTC m=+{time.monotonic():.9f}"

    # -- REST ------------------------------------------------------------------------------

    def inject_rest_fault(
        self, fault: str, *, route: str = ORDER_POST, times: int = 1, delay: float = 2.0
    ) -> None:
        """`timeout`: the next `times` requests on `route` are served (an order is placed), then
        answered `delay` seconds late, after the client has given up. `slow`: the same, `delay`
        seconds late but within the client's timeout. `server_error`: they are
        served, then answered 503. `lost`: answered `delay` seconds late, nothing done.
        `rate_limit`: answered 429, nothing done. `tradeless` (on the fills listing): answered
        with no fills, as though not listed yet."""
        if fault not in REST_FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.rest_faults.append(RestFault(fault, route, times, delay=delay))

    def answer(self, request: RestRequest) -> RestAnswer | None:
        route = f"{request.method} {request.path}"
        if route == SERVER_TIME:  # public
            return RestAnswer(HTTPStatus.OK, self._server_time())
        if route == PRODUCTS:  # public
            return RestAnswer(HTTPStatus.OK, self._products())
        served = {
            ORDER_POST: self._place,
            ORDERS_LIST: self._list,
            FILLS_LIST: self._list_fills,
            ACCOUNTS: self._accounts,
            FEE_TIER: self._fee_tier,
            KEY_PERMISSIONS: self._key_permissions,
        }
        serve = served.get(route)
        if serve is None and route.startswith(ORDER_GET):
            serve, route = self._get, ORDER_GET
        if serve is None:
            return None
        lost = self.take_lost(route)
        if lost is not None:
            return lost
        if self.take_rest_fault(route, "rate_limit") is not None:
            return RestAnswer(HTTPStatus.TOO_MANY_REQUESTS, RATE_LIMITED)
        if self.take_rest_fault(route, "tradeless") is not None:
            return RestAnswer(HTTPStatus.OK, {"fills": [], "has_next": False, "cursor": ""})
        fault = self.take_rest_fault(route)
        try:
            status, body = HTTPStatus.OK, serve(self._verified(request), request)
        except Refusal as exc:
            status, body = exc.status, exc.body
        if fault is None:
            return RestAnswer(status, body)
        if fault.kind == "server_error":
            return RestAnswer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "UNAVAILABLE"})
        return RestAnswer(status, body, fault.delay)

    def _verified(self, request: RestRequest) -> str:
        """The key name once the request's ES256 JWT checks out: signature, lifetime, issuer and
        `uri` (its host with or without a scheme, as ccxt keeps `http://`)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            head, payload, signature = token.split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(payload))
            raw = _unb64(signature)
            name = header["kid"]
            nbf, exp, uri = int(claims["nbf"]), int(claims["exp"]), str(claims["uri"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _unauthorized("malformed JWT") from None
        key = self.keys.get(name)
        if header.get("alg") != "ES256" or key is None or claims.get("sub") != name:
            raise _unauthorized("unknown key or algorithm")
        if len(raw) != 64:  # r || s, 32 bytes each
            raise _unauthorized("bad signature")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            key.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _unauthorized("bad signature") from None
        now = self.now()
        if claims.get("iss") not in ISSUERS or exp - nbf > JWT_SECONDS:
            raise _unauthorized("bad issuer or lifetime")
        if now >= exp or nbf > now + 5:
            raise _unauthorized("expired or not yet valid")
        method, _, target = uri.partition(" ")
        target = target.removeprefix("https://").removeprefix("http://")
        if (method, target) != (
            request.method,
            request.headers.get("Host", "") + self._path(request),
        ):
            raise _unauthorized("uri does not match the request")
        return name

    def _path(self, request: RestRequest) -> str:
        return f"/{self.name}{request.path}"

    def _place(self, key: str, request: RestRequest) -> dict:
        try:
            body = json.loads(request.body)
            client_id = str(body["client_order_id"])
        except (ValueError, KeyError, TypeError):
            raise Refusal(400, {"error": "INVALID_ARGUMENT", "message": "bad body"}) from None
        self.posts[client_id] += 1
        known = self.orders.get(client_id)
        if known is not None:
            if self.duplicates == "refuse":
                return _failure(body, Failure("DUPLICATE_CLIENT_ORDER_ID", "duplicate client id"))
            return _success(known)
        try:
            order = self._fill(key, body)
        except Failure as failure:
            return _failure(body, failure)
        self.orders[client_id] = order
        self.owners[order["order_id"]] = key
        self.created[order["order_id"]] = time.time()
        return _success(order)

    def _fill(self, key: str, body: dict) -> dict:
        """Fill an IOC order against the published book, publish what it took, cancel the rest."""
        book = self.books.get(body.get("product_id", ""))
        if book is None:
            raise Failure("INVALID_PRODUCT_ID", "invalid product_id", "PREVIEW_INVALID_PRODUCT_ID")
        side = body.get("side")
        if side not in ("BUY", "SELL"):
            raise Failure("INVALID_SIDE", "invalid side")
        config = (body.get("order_configuration") or {}).get("sor_limit_ioc")
        try:
            size, limit = Decimal(config["base_size"]), Decimal(config["limit_price"])
        except (TypeError, KeyError, ArithmeticError):
            raise Failure("UNSUPPORTED_ORDER_CONFIGURATION", "only sor_limit_ioc here") from None
        listing = book.listing
        if size % listing.lot or size <= 0:
            raise Failure("INVALID_SIZE_PRECISION", "Invalid order size precision")
        if limit % listing.tick or limit <= 0:
            raise Failure("INVALID_PRICE_PRECISION", "Invalid price precision")
        base, quote = book.symbol.split("-")
        fee_rate = self.taker_fee_bps / 10_000
        held = {"BUY": (quote, size * limit * (1 + fee_rate)), "SELL": (base, size)}[side]
        wallet = self.balances.get(key)
        if wallet is not None and wallet.get(held[0], Decimal(0)) < held[1]:
            raise Failure(
                "INSUFFICIENT_FUND",
                "Insufficient balance in source account",
                "PREVIEW_INSUFFICIENT_FUND",
            )
        taken_side = "ask" if side == "BUY" else "bid"
        taken = book.book.take(taken_side, int(size / listing.lot), int(limit / listing.tick))
        left = book.book.side(taken_side)
        if taken:
            self.publish(book, [(taken_side, p, left.get(p, 0)) for p, _ in taken])
        order_id, stamp = str(uuid.uuid4()), rfc3339(6)
        fills = []
        for ticks, lots in taken:
            price, qty = ticks * listing.tick, lots * listing.lot
            commission = (price * qty * fee_rate).quantize(PLACES, ROUND_HALF_UP)
            fills.append(self._fill_row(order_id, book.symbol, side, price, qty, commission))
            if wallet is not None:
                sign = 1 if side == "BUY" else -1
                wallet[base] = wallet.get(base, Decimal(0)) + sign * qty
                wallet[quote] = wallet.get(quote, Decimal(0)) - sign * price * qty - commission
        self.fills[order_id] = fills
        filled = sum((Decimal(f["size"]) for f in fills), Decimal(0))
        value = sum((Decimal(f["price"]) * Decimal(f["size"]) for f in fills), Decimal(0))
        fees = sum((Decimal(f["commission"]) for f in fills), Decimal(0))
        return {
            "order_id": order_id,
            "product_id": book.symbol,
            "user_id": key,
            "order_configuration": {"sor_limit_ioc": config},
            "side": side,
            "client_order_id": body["client_order_id"],
            # What a partly filled IOC order ends in is not documented; its rest is cancelled.
            "status": "FILLED" if filled == size else "CANCELLED",
            "time_in_force": "IMMEDIATE_OR_CANCEL",
            "created_time": stamp,
            "completion_percentage": _text(filled / size * 100),
            "filled_size": _text(filled),
            "average_filled_price": _text(value / filled) if filled else "0",
            "number_of_fills": str(len(fills)),
            "filled_value": _text(value),
            "total_fees": _text(fees),
            "order_type": "LIMIT",
            "product_type": "SPOT",
            "reject_reason": "",
            "cancel_message": "",
            "last_fill_time": stamp if fills else None,
        }

    def _fill_row(
        self, order_id: str, product: str, side: str, price: Decimal, qty: Decimal, fee: Decimal
    ) -> dict:
        trade_id = str(next(self._trade_ids))
        return {
            "entry_id": uuid.uuid4().hex,
            "trade_id": trade_id,
            "order_id": order_id,
            "trade_time": rfc3339(6),
            "trade_type": "FILL",
            "price": _text(price),
            "size": _text(qty),
            "commission": _text(fee),
            "product_id": product,
            "sequence_timestamp": rfc3339(6),
            "liquidity_indicator": "TAKER",
            "size_in_quote": False,
            "user_id": self.owners.get(order_id, ""),
            "side": side,
            "retail_portfolio_id": "",
        }

    def _list(self, key: str, request: RestRequest) -> dict:
        query = parse_qs(request.query)
        products = query.get("product_ids", [])
        statuses = query.get("order_status", [])
        start = query.get("start_date", [""])[0]
        since = datetime.fromisoformat(start) if start else None
        listed = time.time() - self.listed_after
        orders = [
            o
            for o in reversed(self.orders.values())
            if self.owners[o["order_id"]] == key
            and self.created[o["order_id"]] <= listed
            and (not products or o["product_id"] in products)
            and (not statuses or o["status"] in statuses)
            and (since is None or datetime.fromisoformat(o["created_time"]) >= since)
        ]
        return self._page(orders, query, "orders")

    def _list_fills(self, key: str, request: RestRequest) -> dict:
        query = parse_qs(request.query)
        ids = query.get("order_ids", [])
        fills = [
            f
            for order_id, rows in self.fills.items()
            if self.owners.get(order_id) == key and (not ids or order_id in ids)
            for f in rows
        ]
        return self._page(fills, query, "fills")

    def _accounts(self, key: str, request: RestRequest) -> dict:
        """One wallet per asset the key holds; nothing is on hold, as IOC orders never rest."""
        rows = [
            {
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{asset}")),
                "name": f"{asset} Wallet",
                "currency": asset,
                "available_balance": {"value": _text(amount), "currency": asset},
                "default": True,
                "active": True,
                "created_at": "2026-01-01T00:00:00.000Z",
                "updated_at": rfc3339(3),
                "deleted_at": None,
                "type": "ACCOUNT_TYPE_FIAT" if asset in FIAT else "ACCOUNT_TYPE_CRYPTO",
                "ready": True,
                "hold": {"value": "0", "currency": asset},
                "retail_portfolio_id": "",
            }
            for asset, amount in sorted(self.balances.get(key, {}).items())
        ]
        page = self._page(rows, parse_qs(request.query), "accounts")
        return {**page, "size": len(page["accounts"])}

    def _fee_tier(self, key: str, request: RestRequest) -> dict:
        return {
            "total_volume": 0,
            "total_fees": 0,
            "fee_tier": {
                "pricing_tier": "Advanced 1",
                "usd_from": "0",
                "usd_to": "10000",
                "taker_fee_rate": _text(self.taker_fee_bps / 10_000),
                "maker_fee_rate": _text(self.maker_fee_bps / 10_000),
                "aop_from": "",
                "aop_to": "",
            },
            "margin_rate": None,
            "goods_and_services_tax": None,
            "advanced_trade_only_volume": 0,
            "advanced_trade_only_fees": 0,
            "coinbase_pro_volume": 0,
            "coinbase_pro_fees": 0,
            "total_balance": "",
            "has_promo_fee": False,
        }

    def _key_permissions(self, key: str, request: RestRequest) -> dict:
        """A key that views and trades; one in `can_transfer` may also move funds."""
        return {
            "can_view": True,
            "can_trade": True,
            "can_transfer": key in self.can_transfer,
            "portfolio_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/portfolio")),
            "portfolio_type": "DEFAULT",
        }

    def _products(self) -> dict:
        """GET /market/products: each product's increments, as the order checks apply them."""

        def product(book: VenueBook) -> dict:
            listing = book.listing
            base, quote = book.symbol.split("-")
            return {
                "product_id": book.symbol,
                "base_increment": _text(listing.lot),
                "quote_increment": _text(listing.tick),
                "price_increment": _text(listing.tick),
                "base_min_size": _text(listing.lot),
                "base_max_size": "1000",
                "quote_min_size": _text(listing.min_notional),
                "quote_max_size": "10000000",
                "status": "online",
                "trading_disabled": False,
                "cancel_only": False,
                "post_only": False,
                "limit_only": False,
                "is_disabled": False,
                "product_type": "SPOT",
                "base_currency_id": base,
                "quote_currency_id": quote,
                "base_display_symbol": base,
                "quote_display_symbol": quote,
            }

        products = [product(book) for book in self.books.values()]
        return {"products": products, "num_products": len(products)}

    def _server_time(self) -> dict:
        now = self.now()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        return {
            "iso": f"{stamp}.{int(now * 1000) % 1000:03d}Z",
            "epochSeconds": str(int(now)),
            "epochMillis": str(int(now * 1000)),
        }

    def _page(self, rows: list[dict], query: dict[str, list[str]], name: str) -> dict:
        start = int(query.get("cursor", ["0"])[0] or 0)
        end = start + min(self.page_size, int(query.get("limit", [self.page_size])[0]))
        more = end < len(rows)
        return {name: rows[start:end], "has_next": more, "cursor": str(end) if more else ""}

    def _get(self, key: str, request: RestRequest) -> dict:
        order_id = request.path.removeprefix(ORDER_GET.split(" ", 1)[1])
        order = next((o for o in self.orders.values() if o["order_id"] == order_id), None)
        if order is None or self.owners[order_id] != key:
            body = {
                "error": "NOT_FOUND",
                "error_details": "order with this orderID was not found",
                "message": "order with this orderID was not found",
            }
            raise Refusal(404, body)
        return {"order": order}


def _unauthorized(why: str) -> Refusal:
    return Refusal(401, {"error": "UNAUTHORIZED", "message": f"Unauthorized: {why}"})


def _success(order: dict) -> dict:
    fields = ("order_id", "product_id", "side", "client_order_id")
    return {
        "success": True,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": order["order_id"],
        "success_response": {k: order[k] for k in fields},
        "order_configuration": order["order_configuration"],
    }


def _failure(body: dict, failure: Failure) -> dict:
    # Coinbase answers a refused order with HTTP 200 and this body.
    return {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": failure.reason,
            "message": failure.message,
            "error_details": failure.message,
            "preview_failure_reason": failure.preview,
            "new_order_failure_reason": failure.reason,
        },
        "order_configuration": body.get("order_configuration"),
    }
