"""KuCoin spot as the simulated venue serves it: bullet-public tokens that expire, the WebSocket
(welcome, JSON ping/pong, `/market/level2` changes each with its own sequence), the REST order
book snapshot at the sequence it shows, and the private HF order API (key-version-2 signatures
checked) whose IOC limit orders fill against the very book it publishes."""

import asyncio
import hmac
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http import HTTPStatus
from urllib.parse import parse_qs

from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import Timing
from markets.simulator.venue import RestAnswer, RestFault, RestRequest, Session, SimVenue
from markets.venues.kucoin.orders import CLIENT_OID, RETENTION_S, sign

ENDPOINT = "/kucoin/endpoint"
TOPIC = "/market/level2:"
BOOK_DEPTHS = {"level2_20": 20, "level2_100": 100}
OK = "200000"
ORDER_POST = "POST /api/v1/hf/orders"
BY_CLIENT_OID = "/api/v1/hf/orders/client-order/"
REST_FAULTS = ("error", "timeout", "slow", "unavailable", "unreadable", "lost")
INSUFFICIENT = "Balance insufficient!"
PLACES = Decimal("0.00000001")
TIMESTAMP_WINDOW_MS = 5000


class Refusal(Exception):
    """A request KuCoin refuses: its HTTP status, code and message."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.body = status, {"code": code, "msg": msg}


def _text(value: Decimal) -> str:
    return f"{value.quantize(PLACES).normalize():f}"


def _json(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class SimKucoin(SimVenue):
    """KuCoin on `/kucoin/endpoint?token=..&connectId=..`, its REST API under `/kucoin`."""

    name = "kucoin"
    malformed = '{"type":"message","topic":"/market/level2:'

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.sequences = {s: b.rng.randint(10**12, 10**13) for s, b in self.books.items()}
        self.tokens: dict[str, float] = {}  # token -> loop time it expires
        self.token_sessions: dict[Session, str] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # API key -> (secret, passphrase)
        self.can_withdraw: set[str] = set()  # API keys whose permissions allow moving funds
        self.balances: dict[str, dict[str, Decimal]] = {}  # API key -> currency -> amount
        self.taker_fee_bps = Decimal(10)
        self.maker_fee_bps = Decimal(10)
        self.fee_currency = "quote"  # or "base", or a third currency such as "KCS"
        self.orders: dict[str, dict] = {}  # by clientOid, each with the key that placed it
        self.fills: dict[str, list[dict]] = {}  # by order id
        self.posts: Counter[str] = Counter()  # order POSTs seen per clientOid, refused ones too
        self._ids = itertools.count(1000)

    # -- market data -----------------------------------------------------------------------

    def streams(self, path: str) -> bool:
        return path == ENDPOINT

    def clocks(self) -> list[Awaitable[None]]:
        return [*super().clocks(), self._expire_forever()]

    def bullet(self, host: str) -> dict:
        """POST /api/v1/bullet-public: a new token and the instance server to use it on."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = asyncio.get_running_loop().time() + self.timing.kucoin_token_ttl
        server = {
            "endpoint": f"ws://{host}{ENDPOINT}",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": int(self.timing.kucoin_ping_interval * 1000),
            "pingTimeout": int(self.timing.kucoin_ping_timeout * 1000),
        }
        return {"code": OK, "data": {"token": token, "instanceServers": [server]}}

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        token = query.get("token", [""])[0]
        connect_id = query.get("connectId", [""])[0]
        if self._expired(token):
            session.send(
                _json({"id": connect_id, "type": "error", "code": 401, "data": "token is invalid"})
            )
            await asyncio.sleep(0.05)  # let the writer send it
            return await session.ws.close(1000, "token is invalid")
        self.token_sessions[session] = token
        session.send(_json({"id": connect_id, "type": "welcome"}))
        silence = self.timing.kucoin_ping_interval + self.timing.kucoin_ping_timeout
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(session.ws.recv(), silence)
                except TimeoutError:
                    return await session.ws.close(1000, "ping timeout")
                self._receive(session, raw)
        finally:
            self.token_sessions.pop(session, None)

    def _expired(self, token: str) -> bool:
        expires = self.tokens.get(token)
        return expires is None or asyncio.get_running_loop().time() >= expires

    async def _expire_forever(self) -> None:
        """Close the sockets whose token expired, as KuCoin does: the client needs a new one."""
        while True:
            await asyncio.sleep(min(1.0, self.timing.kucoin_token_ttl / 4))
            for session, token in list(self.token_sessions.items()):
                if self._expired(token):
                    session.send(_json({"type": "error", "code": 401, "data": "token is expired"}))
                    self.token_sessions.pop(session, None)
                    asyncio.get_running_loop().call_later(0.05, session.ws.transport.close)

    def _receive(self, session: Session, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind, request_id = message["type"], str(message.get("id", ""))
        except (ValueError, KeyError, TypeError):
            return session.send(_json({"type": "error", "code": 400, "data": "bad request"}))
        if kind == "ping":
            return session.send(_json({"id": request_id, "type": "pong"}))
        topic = message.get("topic", "")
        if kind not in ("subscribe", "unsubscribe") or not topic.startswith(TOPIC):
            error = {
                "id": request_id,
                "type": "error",
                "code": 404,
                "data": f"topic {topic} is not found",
            }
            return session.send(_json(error))
        symbols = topic.removeprefix(TOPIC).split(",")
        unknown = [s for s in symbols if s not in self.books]
        if unknown:
            error = {
                "id": request_id,
                "type": "error",
                "code": 404,
                "data": f"symbol {unknown[0]} not exists",
            }
            return session.send(_json(error))
        for symbol in symbols:
            if kind == "subscribe":
                session.subs[symbol] = 0
            else:
                session.subs.pop(symbol, None)
        session.subscribed = bool(session.subs)
        if message.get("response"):
            session.send(_json({"id": request_id, "type": "ack"}))

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        symbol, listing = book.symbol, book.listing
        first = self.sequences[symbol] + 1
        sides: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        for seq, (side, price, lots) in enumerate(changes, first):
            # A removed level is size "0" at its price, as KuCoin sends it.
            size = "0" if lots == 0 else listing.qty_text(lots)
            sides["bids" if side == "bid" else "asks"].append(
                [listing.price_text(price), size, str(seq)]
            )
        self.sequences[symbol] = last = first + len(changes) - 1
        data = {
            "changes": sides,
            "sequenceEnd": last,
            "sequenceStart": first,
            "symbol": symbol,
            "time": time.time_ns() // 1_000_000,
        }
        frame = _json(
            {"type": "message", "topic": TOPIC + symbol, "subject": "trade.l2update", "data": data}
        )
        for session in self.sessions:
            if symbol in session.subs and not session.take("gap", symbol):
                session.send(frame)

    def order_book(self, query: dict[str, list[str]], depth: int) -> tuple[int, dict]:
        """GET /api/v1/market/orderbook/level2_20|_100: the best levels at `sequence`."""
        book = self.books.get(query.get("symbol", [""])[0])
        if book is None:
            return HTTPStatus.OK, {"code": "400100", "msg": "symbol not exists"}

        def levels(side: str) -> list[list[str]]:
            sizes = book.book.side(side)
            return [
                [book.listing.price_text(p), book.listing.qty_text(sizes[p])]
                for p in best_first(sizes, side, depth)
            ]

        data = {
            "time": time.time_ns() // 1_000_000,
            "sequence": str(self.sequences[book.symbol]),
            "bids": levels("bid"),
            "asks": levels("ask"),
        }
        return HTTPStatus.OK, {"code": OK, "data": data}

    # -- REST ------------------------------------------------------------------------------

    def open_account(
        self, api_key: str, secret: str, funding: Mapping[str, Decimal], passphrase: str = ""
    ) -> None:
        """Take orders signed with `api_key`, `secret` and `passphrase`, holding `funding`."""
        self.keys[api_key] = (secret, passphrase)
        self.balances[api_key] = dict(funding)

    def holdings(self, api_key: str) -> dict[str, Decimal]:
        """What `api_key`'s account holds now (KuCoin's currency names are the desk's)."""
        return dict(self.balances.get(api_key, {}))

    def inject_rest_fault(
        self,
        fault: str,
        *,
        route: str = ORDER_POST,
        times: int = 1,
        message: str = INSUFFICIENT,
        delay: float = 2.0,
    ) -> None:
        """`error`: the next `times` requests on `route` are refused with `message` (code 200004),
        nothing done. `timeout`: served (an order is placed), then answered `delay` seconds
        late, after the client has given up. `slow`: the same, `delay` seconds late but within
        the client's timeout. `unreadable`: served, then answered with a body that is no KuCoin
        envelope. `unavailable`: answered HTTP 503, nothing done. `lost`: dropped before the
        venue acts, nothing done, answered 504 `delay` seconds late. `route` is "METHOD /path"."""
        if fault not in REST_FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.rest_faults.append(RestFault(fault, route, times, message, delay))

    def answer(self, request: RestRequest) -> RestAnswer | None:
        route = f"{request.method} {request.path}"
        if route == "POST /api/v1/bullet-public":
            return RestAnswer(HTTPStatus.OK, self.bullet(request.headers.get("Host", "")))
        if route == "GET /api/v1/timestamp":  # public: the venue's clock, in milliseconds
            return RestAnswer(HTTPStatus.OK, {"code": OK, "data": int(self.now() * 1000)})
        if route == "GET /api/v1/symbols":  # public: each symbol's increments
            return RestAnswer(HTTPStatus.OK, {"code": OK, "data": self._symbols()})
        name = request.path.removeprefix("/api/v1/market/orderbook/")
        if request.method == "GET" and name in BOOK_DEPTHS:
            return RestAnswer(*self.order_book(parse_qs(request.query), BOOK_DEPTHS[name]))
        handler = self._private(route)
        if handler is None:
            return None
        fault_route = (
            route if not route.startswith(f"GET {BY_CLIENT_OID}") else f"GET {BY_CLIENT_OID}"
        )
        fault = self.take_rest_fault(fault_route)
        if fault is not None and fault.kind == "lost":
            return RestAnswer(
                HTTPStatus.GATEWAY_TIMEOUT, "<html>gateway timeout</html>", fault.delay
            )
        if fault is not None and fault.kind == "unavailable":
            # The gateway's page, not a KuCoin envelope.
            return RestAnswer(HTTPStatus.SERVICE_UNAVAILABLE, "<html>service unavailable</html>")
        try:
            if fault is not None and fault.kind == "error":
                raise Refusal(HTTPStatus.OK, "200004", fault.message)
            key = self._verified(request)
            body = {"code": OK, "data": handler(key, request)}
        except Refusal as exc:
            return RestAnswer(exc.status, exc.body)
        if fault is not None and fault.kind == "unreadable":
            return RestAnswer(HTTPStatus.BAD_GATEWAY, "<html>bad gateway</html>")
        return RestAnswer(HTTPStatus.OK, body, fault.delay if fault else 0.0)

    def _private(self, route: str):
        if route.startswith(f"GET {BY_CLIENT_OID}"):
            return self._order_by_client_oid
        return {
            ORDER_POST: self._place,
            "GET /api/v1/hf/fills": self._fills,
            "GET /api/v1/trade-fees": self._trade_fees,
            "GET /api/v1/accounts": self._accounts,
            "GET /api/v1/hf/orders/active/symbols": self._active_symbols,
            "GET /api/v1/user/api-key": self._api_key_info,
            "GET /api/v1/hf/orders/active": self._active_orders,
        }.get(route)

    def _verified(self, request: RestRequest) -> str:
        """The request's API key once its key, timestamp, passphrase and signature check out."""
        headers = request.headers
        key = headers.get("KC-API-KEY", "")
        if key not in self.keys:
            raise Refusal(HTTPStatus.UNAUTHORIZED, "400003", "KC-API-KEY not exists")
        secret, passphrase = self.keys[key]
        if headers.get("KC-API-KEY-VERSION") != "2":
            raise Refusal(HTTPStatus.UNAUTHORIZED, "400003", "KC-API-KEY-VERSION must be 2")
        stamp = headers.get("KC-API-TIMESTAMP", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > TIMESTAMP_WINDOW_MS:
            raise Refusal(HTTPStatus.UNAUTHORIZED, "400002", "KC-API-TIMESTAMP Invalid")
        if not hmac.compare_digest(headers.get("KC-API-PASSPHRASE", ""), sign(secret, passphrase)):
            raise Refusal(HTTPStatus.UNAUTHORIZED, "400004", "Invalid KC-API-PASSPHRASE")
        endpoint = request.path + (f"?{request.query}" if request.query else "")
        expected = sign(secret, stamp + request.method + endpoint + request.body)
        if not hmac.compare_digest(headers.get("KC-API-SIGN", ""), expected):
            raise Refusal(HTTPStatus.UNAUTHORIZED, "400005", "Signature verification failed")
        return key

    def _place(self, key: str, request: RestRequest) -> dict:
        try:
            params = json.loads(request.body)
            client_oid = params["clientOid"]
        except (ValueError, KeyError, TypeError):
            raise Refusal(
                HTTPStatus.OK, "400100", "validation.createOrder.clientOidIsRequired"
            ) from None
        self.posts[client_oid] += 1
        if not isinstance(client_oid, str) or not CLIENT_OID.match(client_oid):
            raise Refusal(HTTPStatus.OK, "400100", "validation.createOrder.clientOidInvalid")
        if client_oid in self.orders:
            raise Refusal(HTTPStatus.OK, "400100", "validation.createOrder.clientOidDuplicated")
        book = self.books.get(params.get("symbol", ""))
        if book is None:
            raise Refusal(HTTPStatus.OK, "400600", "validation.createOrder.symbolNotAvailable")
        if params.get("type") != "limit" or params.get("timeInForce") != "IOC":
            raise Refusal(HTTPStatus.OK, "400100", "Only limit IOC orders are served here")
        try:
            price, size = Decimal(params["price"]), Decimal(params["size"])
            side = params["side"]
        except (KeyError, TypeError, InvalidOperation):
            raise Refusal(HTTPStatus.OK, "400100", "Parameter error") from None
        listing = book.listing
        if side not in ("buy", "sell") or price <= 0 or size <= 0:
            raise Refusal(HTTPStatus.OK, "400100", "Parameter error")
        if price % listing.tick:
            raise Refusal(HTTPStatus.OK, "400100", "Price increment invalid.")
        if size % listing.lot:
            raise Refusal(HTTPStatus.OK, "400100", "Size increment invalid.")
        if price * size < listing.min_notional:
            raise Refusal(HTTPStatus.OK, "400100", "Order funds invalid.")
        base, quote = book.symbol.split("-")
        held = self.balances.setdefault(key, {})
        need, asset = (
            (price * size * (1 + self.taker_fee_bps / 10_000), quote)
            if side == "buy"
            else (size, base)
        )
        if held.get(asset, Decimal(0)) < need:
            raise Refusal(HTTPStatus.OK, "200004", INSUFFICIENT)
        order = self._fill(key, book, client_oid, side, price, size)
        return {"orderId": order["id"], "clientOid": client_oid}

    def _fill(self, key: str, book: VenueBook, client_oid: str, side: str, limit, size) -> dict:
        """Fill an IOC order against the published book, publish what it took, cancel the rest."""
        listing = book.listing
        taken_side = "ask" if side == "buy" else "bid"
        taken = book.book.take(taken_side, int(size / listing.lot), int(limit / listing.tick))
        left = book.book.side(taken_side)
        if taken:
            self.publish(book, [(taken_side, p, left.get(p, 0)) for p, _ in taken])
        base, quote = book.symbol.split("-")
        fee_asset = {"quote": quote, "base": base}.get(self.fee_currency, self.fee_currency)
        order_id, now = f"{next(self._ids):024x}", int(time.time() * 1000)
        held = self.balances[key]
        fills, dealt, funds, fees = [], Decimal(0), Decimal(0), Decimal(0)
        for ticks, lots in taken:
            price, qty = ticks * listing.tick, lots * listing.lot
            charged = qty if fee_asset == base else price * qty
            fee = (charged * self.taker_fee_bps / 10_000).quantize(PLACES, ROUND_HALF_UP)
            direction = 1 if side == "buy" else -1
            held[base] = held.get(base, Decimal(0)) + direction * qty
            held[quote] = held.get(quote, Decimal(0)) - direction * price * qty
            held[fee_asset] = held.get(fee_asset, Decimal(0)) - fee
            dealt, funds, fees = dealt + qty, funds + price * qty, fees + fee
            fills.append(
                {
                    "id": next(self._ids),
                    "orderId": order_id,
                    "counterOrderId": f"{next(self._ids):024x}",
                    "tradeId": next(self._ids),
                    "symbol": book.symbol,
                    "side": side,
                    "liquidity": "taker",
                    "type": "limit",
                    "forceTaker": False,
                    "price": _text(price),
                    "size": _text(qty),
                    "funds": _text(price * qty),
                    "fee": _text(fee),
                    "feeRate": _text(self.taker_fee_bps / 10_000),
                    "feeCurrency": fee_asset,
                    "stop": "",
                    "tradeType": "TRADE",
                    "createdAt": now,
                }
            )
        self.fills[order_id] = fills
        order = {
            "id": order_id,
            "clientOid": client_oid,
            "symbol": book.symbol,
            "opType": "DEAL",
            "type": "limit",
            "side": side,
            "price": _text(limit),
            "size": _text(size),
            "dealSize": _text(dealt),
            "dealFunds": _text(funds),
            "fee": _text(fees),
            "feeCurrency": fee_asset,
            "timeInForce": "IOC",
            "active": False,
            "inOrderBook": False,
            "cancelExist": dealt < size,
            "createdAt": now,
            "lastUpdatedAt": now,
            "key": key,
        }
        self.orders[client_oid] = order
        return order

    def _order_by_client_oid(self, key: str, request: RestRequest) -> dict:
        client_oid = request.path.removeprefix(BY_CLIENT_OID)
        symbol = parse_qs(request.query).get("symbol", [""])[0]
        order = self.orders.get(client_oid)
        too_old = order is not None and time.time() * 1000 - order["createdAt"] > RETENTION_S * 1000
        if order is None or order["key"] != key or order["symbol"] != symbol or too_old:
            raise Refusal(HTTPStatus.OK, "100001", "error.getOrder.orderNotExist")
        return {k: v for k, v in order.items() if k != "key"}

    def _fills(self, key: str, request: RestRequest) -> dict:
        query = parse_qs(request.query)
        symbol = query.get("symbol", [""])[0]
        if symbol not in self.books:
            raise Refusal(HTTPStatus.OK, "400100", "symbol is required")
        order_id = query.get("orderId", [None])[0]
        try:
            limit = int(query.get("limit", ["20"])[0])
            last_id = int(query.get("lastId", ["0"])[0])
        except ValueError:
            raise Refusal(HTTPStatus.OK, "400100", "Parameter error") from None
        if not 1 <= limit <= 100:
            raise Refusal(HTTPStatus.OK, "400100", "Parameter error")
        mine = {o["id"] for o in self.orders.values() if o["key"] == key}
        # Newest first, a page of `limit` (20 unless asked) older than `lastId`, as KuCoin pages.
        items = sorted(
            (
                f
                for oid, fills in self.fills.items()
                if oid in mine and (order_id is None or oid == order_id)
                for f in fills
                if f["symbol"] == symbol and (not last_id or f["id"] < last_id)
            ),
            key=lambda f: f["id"],
            reverse=True,
        )[:limit]
        return {"items": items, "lastId": items[-1]["id"] if items else 0}

    def _symbols(self) -> list[dict]:
        """GET /api/v1/symbols: each symbol's increments, as the order checks apply them."""

        def symbol(book: VenueBook) -> dict:
            listing = book.listing
            base, quote = book.symbol.split("-")
            return {
                "symbol": book.symbol,
                "name": book.symbol,
                "baseCurrency": base,
                "quoteCurrency": quote,
                "feeCurrency": quote,
                "market": quote,
                "baseMinSize": _text(listing.lot),
                "quoteMinSize": _text(listing.min_notional),
                "baseMaxSize": "10000000000",
                "quoteMaxSize": "99999999",
                "baseIncrement": _text(listing.lot),
                "quoteIncrement": _text(listing.tick),
                "priceIncrement": _text(listing.tick),
                "priceLimitRate": "0.1",
                "minFunds": _text(listing.min_notional),
                "isMarginEnabled": False,
                "enableTrading": True,
            }

        return [symbol(book) for book in self.books.values()]

    def _api_key_info(self, key: str, request: RestRequest) -> dict:
        """A spot trading key; one in `can_withdraw` may also withdraw and transfer."""
        rights = "General,Spot" + (",InnerTransfer,Withdrawal" if key in self.can_withdraw else "")
        return {
            "remark": "desk",
            "apiKey": key,
            "apiVersion": 2,
            "permission": rights,
            "ipWhitelist": "",
            "createdAt": 1_767_225_600_000,
            "uid": 1,
            "isMaster": True,
        }

    def _active(self, key: str) -> list[dict]:
        return [o for o in self.orders.values() if o["key"] == key and o["active"]]

    def _active_symbols(self, key: str, request: RestRequest) -> dict:
        return {"symbols": sorted({o["symbol"] for o in self._active(key)})}

    def _active_orders(self, key: str, request: RestRequest) -> list[dict]:
        symbol = parse_qs(request.query).get("symbol", [""])[0]
        if symbol not in self.books:
            raise Refusal(HTTPStatus.OK, "400100", "symbol is required")
        shown = [o for o in self._active(key) if o["symbol"] == symbol]
        return [{k: v for k, v in o.items() if k != "key"} for o in shown]

    def hold_order(
        self, api_key: str, symbol: str, *, side: str, price: Decimal, amount: Decimal, cid: str
    ) -> str:
        order_id, now = f"{next(self._ids):024x}", int(time.time() * 1000)
        self.orders[cid or order_id] = {
            "id": order_id,
            "clientOid": cid,
            "symbol": symbol,
            "opType": "DEAL",
            "type": "limit",
            "side": side,
            "price": _text(price),
            "size": _text(amount),
            "dealSize": _text(Decimal(0)),
            "dealFunds": _text(Decimal(0)),
            "fee": _text(Decimal(0)),
            "feeCurrency": symbol.split("-")[1],
            "timeInForce": "GTC",
            "active": True,
            "inOrderBook": True,
            "cancelExist": False,
            "createdAt": now,
            "lastUpdatedAt": now,
            "key": api_key,
        }
        return order_id

    def _trade_fees(self, key: str, request: RestRequest) -> list[dict]:
        symbols = [s for s in parse_qs(request.query).get("symbols", [""])[0].split(",") if s]
        if not symbols or len(symbols) > 10:
            raise Refusal(HTTPStatus.OK, "400100", "symbols: between 1 and 10")
        taker, maker = _text(self.taker_fee_bps / 10_000), _text(self.maker_fee_bps / 10_000)
        return [{"symbol": s, "takerFeeRate": taker, "makerFeeRate": maker} for s in symbols]

    def _accounts(self, key: str, request: RestRequest) -> list[dict]:
        """Each currency's balance to its last digit: what the fills moved it by, unrounded."""

        def exact(amount: Decimal) -> str:
            return f"{amount.normalize():f}"

        return [
            {
                "id": f"{key}-{currency}",
                "currency": currency,
                "type": "trade",
                "balance": exact(amount),
                "available": exact(amount),
                "holds": "0",
            }
            for currency, amount in sorted(self.balances.get(key, {}).items())
        ]
