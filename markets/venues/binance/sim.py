"""A loopback stand-in for the few Binance spot REST endpoints the live venue calls.

Signed like Binance (HMAC-SHA256, X-MBX-APIKEY), IOC limit orders fill against levels a test
sets; faults make the next order fail (`error`) or answer too late for the client (`timeout`).
"""

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

ORDER_POST = "POST /api/v3/order"
ORDER_GET = "GET /api/v3/order"
FAULTS = ("error", "timeout")
PLACES = Decimal("0.00000001")  # Binance prints every amount with 8 decimals
INSUFFICIENT = "Account has insufficient balance for requested action."
Levels = list[tuple[Decimal, Decimal]]


class Refusal(Exception):
    """A request Binance would refuse: its HTTP status and error JSON."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.body = status, {"code": code, "msg": msg}


@dataclass(slots=True)
class Fault:
    kind: str
    route: str
    times: int
    message: str
    delay: float


@dataclass(slots=True)
class Book:
    base: str
    quote: str
    bids: Levels = field(default_factory=list)
    asks: Levels = field(default_factory=list)
    # BTCUSDT's PRICE_FILTER tickSize and LOT_SIZE stepSize: an order off either grid is refused;
    # and its NOTIONAL minNotional: an order worth less is refused too.
    tick: Decimal = Decimal("0.01")
    step: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal(0)


def _text(value: Decimal) -> str:
    return f"{value.quantize(PLACES):f}"


class BinanceStandIn:
    """Serves /api/v3 order, myTrades, time and ping; start with `async with` or start()/stop().

    `keys` maps API key to secret. `posts` counts the order POSTs seen per client order id, even
    refused ones, so a test can assert that a retry never sent a second order.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keys: Mapping[str, str],
        taker_fee_bps: Decimal = Decimal(10),
        commission_in: str = "quote",
    ) -> None:
        self.host, self.port = host, port
        self.keys = dict(keys)
        self.taker_fee_bps = taker_fee_bps
        self.commission_in = commission_in
        self.books: dict[str, Book] = {}
        self.orders: dict[str, dict] = {}  # by client order id
        self.trades: dict[int, list[dict]] = {}  # by order id
        self.posts: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self._ids = itertools.count(1000)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        """The REST base URL (what `Exchange.rest_url` holds for Binance: no /api/v3)."""
        return f"http://{self.host}:{self.port}"

    def set_book(
        self,
        symbol: str,
        *,
        bids: Levels,
        asks: Levels,
        base: str = "BTC",
        quote: str = "USDT",
        tick: Decimal = Decimal("0.01"),
        step: Decimal = Decimal("0.00001"),
        min_notional: Decimal = Decimal(0),
    ) -> None:
        """The levels orders on `symbol` fill against, best first; fills take liquidity away.

        `tick` and `step` are the symbol's price and quantity grids (Binance's PRICE_FILTER and
        LOT_SIZE filters), `min_notional` its smallest order value (NOTIONAL): an order off a
        grid or under the minimum is refused as Binance refuses it.
        """
        self.books[symbol] = Book(base, quote, list(bids), list(asks), tick, step, min_notional)

    def inject(
        self,
        fault: str,
        *,
        route: str = ORDER_POST,
        times: int = 1,
        message: str = INSUFFICIENT,
        delay: float = 2.0,
    ) -> None:
        """`error`: the next `times` orders are refused with `message` (Binance code -2010).
        `timeout`: the next `times` requests on `route` are served (an order is placed), then
        answered `delay` seconds late, after the client has given up."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.faults.append(Fault(fault, route, times, message, delay))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> "BinanceStandIn":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            method, target, headers, body = await _read_request(reader)
            status, payload, delay = self._answer(method, target, headers, body)
            if delay:
                await asyncio.sleep(delay)
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: application/json;charset=UTF-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    def _answer(
        self, method: str, target: str, headers: Mapping[str, str], body: str
    ) -> tuple[int, object, float]:
        split = urlsplit(target)
        route = f"{method} {split.path}"
        fault = self._take_fault(route, "timeout")
        try:
            payload = self._route(route, split.query, headers, body)
            status = 200
        except Refusal as exc:
            status, payload = exc.status, exc.body
        return status, payload, fault.delay if fault else 0.0

    def _take_fault(self, route: str, kind: str) -> Fault | None:
        """The fault of `kind` next in line, if it is for `route`: faults of a kind fire in the
        order injected, so a test can time out an order and then the lookups after it."""
        fault = next((f for f in self.faults if f.kind == kind), None)
        if fault is None or fault.route != route:
            return None
        fault.times -= 1
        if fault.times <= 0:
            self.faults.remove(fault)
        return fault

    def _route(self, route: str, query: str, headers: Mapping[str, str], body: str) -> object:
        if route == "GET /api/v3/ping":
            return {}
        if route == "GET /api/v3/time":
            return {"serverTime": int(time.time() * 1000)}
        signed = {
            ORDER_POST: self._place,
            ORDER_GET: self._query,
            "GET /api/v3/myTrades": self._my_trades,
        }.get(route)
        if signed is None:
            raise Refusal(404, -1000, f"Unknown path {route}.")
        return signed(self._verified(query, headers, body))

    def _verified(self, query: str, headers: Mapping[str, str], body: str) -> dict[str, str]:
        """The request's parameters once its key, signature and timestamp check out."""
        secret = self.keys.get(headers.get("x-mbx-apikey", ""))
        if secret is None:
            raise Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
        # Binance signs "totalParams": the query string followed directly by the body.
        total = query + body
        signed, _, signature = total.rpartition("&signature=")
        expected = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            raise Refusal(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        try:
            stamp, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            raise Refusal(
                400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null."
            ) from None
        now = int(time.time() * 1000)
        if stamp > now + 1000 or now - stamp > window:
            raise Refusal(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    def _place(self, params: dict[str, str]) -> dict:
        client_id = params.get("newClientOrderId", "")
        self.posts[client_id] += 1
        book = self.books.get(params.get("symbol", ""))
        if book is None:
            raise Refusal(400, -1121, "Invalid symbol.")
        if params.get("type") != "LIMIT" or params.get("timeInForce") != "IOC":
            raise Refusal(400, -1116, "Only LIMIT IOC orders are served here.")
        if not client_id or client_id in self.orders:
            raise Refusal(400, -2010, "Duplicate order sent.")
        if Decimal(params["price"]) % book.tick:
            raise Refusal(400, -1013, "Filter failure: PRICE_FILTER")
        if Decimal(params["quantity"]) % book.step:
            raise Refusal(400, -1013, "Filter failure: LOT_SIZE")
        if Decimal(params["price"]) * Decimal(params["quantity"]) < book.min_notional:
            raise Refusal(400, -1013, "Filter failure: NOTIONAL")
        error = self._take_fault(ORDER_POST, "error")
        if error is not None:
            raise Refusal(400, -2010, error.message)
        order, fills = self._fill(book, params)
        self.orders[client_id] = order
        return {**order, "fills": fills}

    def _fill(self, book: Book, params: dict[str, str]) -> tuple[dict, list[dict]]:
        side, amount, limit = params["side"], Decimal(params["quantity"]), Decimal(params["price"])
        levels = book.asks if side == "BUY" else book.bids
        order_id, now = next(self._ids), int(time.time() * 1000)
        left, fills, trades = amount, [], []
        while left > 0 and levels:
            price, size = levels[0]
            if price > limit if side == "BUY" else price < limit:
                break
            qty = min(size, left)
            levels[0] = (price, size - qty)
            if levels[0][1] == 0:
                levels.pop(0)
            left -= qty
            charged = qty if self.commission_in == "base" else price * qty
            commission = (charged * self.taker_fee_bps / 10_000).quantize(PLACES, ROUND_HALF_UP)
            asset = book.base if self.commission_in == "base" else book.quote
            fill = {
                "price": _text(price),
                "qty": _text(qty),
                "commission": _text(commission),
                "commissionAsset": asset,
                "tradeId": next(self._ids),
            }
            fills.append(fill)
            trades.append(
                {
                    "symbol": params["symbol"],
                    "id": fill["tradeId"],
                    "orderId": order_id,
                    "orderListId": -1,
                    **{k: fill[k] for k in ("price", "qty", "commission", "commissionAsset")},
                    "quoteQty": _text(price * qty),
                    "time": now,
                    "isBuyer": side == "BUY",
                    "isMaker": False,
                    "isBestMatch": True,
                }
            )
        executed = amount - left
        self.trades[order_id] = trades
        order = {
            "symbol": params["symbol"],
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": params["newClientOrderId"],
            "transactTime": now,
            "price": _text(limit),
            "origQty": _text(amount),
            "executedQty": _text(executed),
            "origQuoteOrderQty": _text(Decimal(0)),
            "cummulativeQuoteQty": _text(sum((t[0] * t[1] for t in _pairs(fills)), Decimal(0))),
            # An IOC order's unfilled rest expires, so only a complete fill reads FILLED.
            "status": "FILLED" if left == 0 else "EXPIRED",
            "timeInForce": "IOC",
            "type": "LIMIT",
            "side": side,
            "workingTime": now,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        return order, fills

    def _query(self, params: dict[str, str]) -> dict:
        client_id = params.get("origClientOrderId")
        order = self.orders.get(client_id or "")
        if order is None or order["symbol"] != params.get("symbol"):
            raise Refusal(400, -2013, "Order does not exist.")
        return {k: v for k, v in order.items() if k != "transactTime"} | {
            "time": order["workingTime"]
        }

    def _my_trades(self, params: dict[str, str]) -> list[dict]:
        trades = self.trades.get(int(params.get("orderId") or 0), [])
        return [t for t in trades if t["symbol"] == params.get("symbol")]


def _pairs(fills: list[dict]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(f["price"]), Decimal(f["qty"])) for f in fills]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], str]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = (await reader.readexactly(length)).decode() if length else ""
    return method, target, headers, body
