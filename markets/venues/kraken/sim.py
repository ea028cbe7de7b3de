"""Kraken Spot as the simulated venue serves it: WebSocket v2 market data (the `book` channel with
CRC32 checksums over each client's subscribed window) and the private REST order API (API-Sign
checked, nonces rising per key) whose IOC limit orders fill against the very book it publishes."""

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from urllib.parse import parse_qsl

from markets.book import checksum_fragment
from markets.simulator.book import Change, best_first
from markets.simulator.market import VenueBook
from markets.simulator.specs import Timing
from markets.simulator.venue import (
    RestAnswer,
    RestFault,
    RestRequest,
    Session,
    SimVenue,
    rfc3339,
)
from markets.venues.kraken.orders import BALANCE_CODES, DESK_ASSETS, REST_ASSETS, rest_pair

DEPTHS = (10, 25, 100, 500, 1000)
PRIVATE = "/0/private/"
ADD_ORDER = "/0/private/AddOrder"
REST_FAULTS = (
    "error",
    "timeout",
    "slow",
    "unavailable",
    "unreadable",
    "lost",
    "resting",
    "tradeless",
)
INSUFFICIENT = "EOrder:Insufficient funds"
PLACES = Decimal("0.00000001")  # Kraken prints volumes, costs and fees with 8 decimals


def api_sign(path: str, body: str, nonce: str, secret: str) -> str:
    """Kraken's API-Sign: base64(HMAC-SHA512(path + SHA256(nonce + body), the decoded secret))."""
    message = path.encode() + hashlib.sha256((nonce + body).encode()).digest()
    digest = hmac.new(base64.b64decode(secret), message, hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


class Refusal(Exception):
    """A request Kraken refuses: its error strings, answered with HTTP 200 as Kraken does."""


def _text(value: Decimal) -> str:
    return f"{value.quantize(PLACES):f}"


def _places(increment: Decimal) -> int:
    return max(0, -increment.normalize().as_tuple().exponent)


def _assets(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split("/")
    return BALANCE_CODES.get(base, base), BALANCE_CODES.get(quote, quote)


def kraken_checksum(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken v2 CRC32 over the top 10 asks then top 10 bids, each (price, qty) text best-first."""
    parts = [checksum_fragment(p, q) for p, q in [*asks[:10], *bids[:10]]]
    return zlib.crc32("".join(parts).encode())


class SimKraken(SimVenue):
    """Kraken on `/kraken/v2`: acks per symbol, snapshots at the asked depth, checked updates."""

    name = "kraken"
    malformed = '{"channel":"book","type":"update","data":[{"symbol":'
    one_shots = ("gap", "bad_checksum")

    def __init__(self, books: list[VenueBook], timing: Timing) -> None:
        super().__init__(books, timing)
        self.keys: dict[str, str] = {}  # API key -> base64 secret
        self.balances: dict[str, dict[str, Decimal]] = {}  # API key -> asset code -> amount
        self.last_nonce: Counter[str] = Counter()  # API key -> last accepted nonce
        self.taker_fee_bps = Decimal(26)
        self.maker_fee_bps = Decimal(16)
        self.orders: dict[str, dict] = {}  # by txid, each with the key that placed it
        self.trades: dict[str, dict] = {}  # by trade id
        self.posts: Counter[str] = Counter()  # AddOrder requests seen per cl_ord_id
        self._ids = itertools.count(1000)

    def streams(self, path: str) -> bool:
        return path == "/kraken/v2"

    def open_account(
        self, api_key: str, secret: str, funding: Mapping[str, Decimal], passphrase: str = ""
    ) -> None:
        self.keys[api_key] = secret
        self.balances[api_key] = {BALANCE_CODES.get(a, a): v for a, v in funding.items()}

    def holdings(self, api_key: str) -> dict[str, Decimal]:
        held = self.balances.get(api_key, {})
        return {DESK_ASSETS.get(code, code): amount for code, amount in held.items()}

    def hold_order(
        self, api_key: str, symbol: str, *, side: str, price: Decimal, amount: Decimal, cid: str
    ) -> str:
        txid, pair, now = self._txid("O"), rest_pair(symbol), time.time()
        order = f"{side} {_text(amount)} {pair} @ limit {_text(price)}"
        self.orders[txid] = {
            "refid": None,
            "userref": 0,
            "cl_ord_id": cid,
            "status": "open",
            "opentm": now,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair,
                "type": side,
                "ordertype": "limit",
                "price": _text(price),
                "price2": "0",
                "leverage": "none",
                "order": order,
                "close": "",
            },
            "vol": _text(amount),
            "vol_exec": _text(Decimal(0)),
            "cost": _text(Decimal(0)),
            "fee": _text(Decimal(0)),
            "price": _text(Decimal(0)),
            "stopprice": "0.00000000",
            "limitprice": "0.00000000",
            "misc": "",
            "oflags": "fciq",
            "trades": [],
            "key": api_key,
        }
        return txid

    async def converse(self, session: Session, path: str, query: dict[str, list[str]]) -> None:
        status = {"api_version": "v2", "connection_id": random.getrandbits(64), "system": "online"}
        session.send(json.dumps({"channel": "status", "type": "update", "data": [status]}))
        heartbeats = asyncio.create_task(self._heartbeats(session))
        try:
            async for raw in session.ws:
                self._receive(session, raw)
        finally:
            heartbeats.cancel()

    def publish(self, book: VenueBook, changes: list[Change]) -> None:
        frames: dict[int, str | None] = {}
        checksum = self._checksum(book)
        stamp = rfc3339(6)
        for session in self.sessions:
            depth = session.subs.get(book.symbol)
            if depth is None:
                continue
            if depth not in frames:
                frames[depth] = self._update(book, depth, checksum, stamp)
            if frames[depth] is None or session.take("gap", book.symbol):
                continue
            if session.take("bad_checksum", book.symbol):
                session.send(self._update(book, depth, checksum ^ 0xFFFFFFFF, stamp) or "")
            else:
                session.send(frames[depth])

    def _update(self, book: VenueBook, depth: int, checksum: int, stamp: str) -> str | None:
        """The update that takes a client's window of `depth` levels from before to now."""
        sides = {}
        for index, side in enumerate(("bid", "ask")):
            old, new = book.book.previous[index], book.book.side(side)
            old_top, new_top = best_first(old, side, depth), best_first(new, side, depth)
            # Levels pushed out of the window are not deleted on the wire: clients truncate.
            deleted = [(p, 0) for p in old_top if p not in new]
            shown = set(old_top)
            entered = [(p, new[p]) for p in new_top if p not in shown or old.get(p) != new[p]]
            sides[side] = deleted + entered
        if not sides["bid"] and not sides["ask"]:
            return None
        return self._frame("update", book, sides["bid"], sides["ask"], checksum, stamp)

    def _frame(self, kind, book, bids, asks, checksum: int, stamp: str | None = None) -> str:
        def levels(side: list[tuple[int, int]]) -> str:
            listing = book.listing
            return ",".join(
                f'{{"price":{listing.price_text(p)},"qty":{listing.qty_text(q)}}}' for p, q in side
            )

        tail = f',"timestamp":"{stamp}"' if stamp else ""
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{json.dumps(book.symbol)},'
            f'"bids":[{levels(bids)}],"asks":[{levels(asks)}],"checksum":{checksum}{tail}}}]}}'
        )

    @staticmethod
    def _checksum(book: VenueBook) -> int:
        def texts(side: str) -> list[tuple[str, str]]:
            levels = book.book.side(side)
            listing = book.listing
            top = best_first(levels, side, 10)
            return [(listing.price_text(p), listing.qty_text(levels[p])) for p in top]

        return kraken_checksum(texts("ask"), texts("bid"))

    def _snapshot(self, book: VenueBook, depth: int) -> str:
        def top(side: str) -> list[tuple[int, int]]:
            levels = book.book.side(side)
            return [(p, levels[p]) for p in best_first(levels, side, depth)]

        return self._frame("snapshot", book, top("bid"), top("ask"), self._checksum(book))

    def _receive(self, session: Session, raw: str | bytes) -> None:
        time_in = rfc3339(6)
        try:
            message = json.loads(raw)
            method = message["method"]
        except (ValueError, KeyError, TypeError):
            return self._reply(session, {"error": "Malformed request", "method": "error"}, time_in)
        req_id = {"req_id": message["req_id"]} if "req_id" in message else {}
        if method == "ping":
            return self._reply(session, {"method": "pong", **req_id}, time_in)
        params = message.get("params")
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
            return self._reply(session, {"error": "Malformed request", "method": "error"}, time_in)
        for symbol in params.get("symbol") or []:
            result = self._subscription(session, method, params, symbol)
            self._reply(session, {"method": method, **result, **req_id}, time_in)
            if method == "subscribe" and result["success"] and params.get("snapshot", True):
                session.send(self._snapshot(self.books[symbol], session.subs[symbol]))

    def _subscription(self, session: Session, method: str, params: dict, symbol: str) -> dict:
        """Apply one symbol's (un)subscribe; return its ack fields."""
        depth = params.get("depth", 10)
        failure = None
        if params.get("channel") != "book":
            failure = f"Channel not supported {params.get('channel')}"
        elif depth not in DEPTHS:
            failure = f"Invalid depth {depth}"
        elif symbol not in self.books:
            failure = f"Currency pair not supported {symbol}"
        elif method == "subscribe" and symbol in session.subs:
            failure = "Already subscribed"
        elif method == "unsubscribe" and session.subs.get(symbol) != depth:
            failure = "Subscription Not Found"
        if failure:
            return {"error": failure, "success": False, "symbol": symbol}
        if method == "subscribe":
            session.subs[symbol] = depth
            session.subscribed = True
        else:
            del session.subs[symbol]
        result = {"channel": "book", "depth": depth, "symbol": symbol}
        if method == "subscribe":
            result["snapshot"] = params.get("snapshot", True)
        return {"result": result, "success": True}

    @staticmethod
    def _reply(session: Session, fields: dict, time_in: str) -> None:
        if "error" in fields:
            fields["success"] = False
        session.send(json.dumps({**fields, "time_in": time_in, "time_out": rfc3339(6)}))

    async def _heartbeats(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.timing.heartbeat)
            # Kraken sends heartbeats after the first subscription, and only when idle.
            idle = loop.time() - session.last_sent >= self.timing.heartbeat * 0.9
            if session.subscribed and idle:
                session.send('{"channel":"heartbeat"}')

    # -- REST ------------------------------------------------------------------------------

    def inject_rest_fault(
        self,
        fault: str,
        *,
        route: str = ADD_ORDER,
        times: int = 1,
        message: str = "EService:Unavailable",
        delay: float = 2.0,
    ) -> None:
        """`error`: the next `times` requests on `route` are refused with `message`, nothing done.
        `timeout`: the next `times` requests on `route` are served (an order is placed), then
        answered `delay` seconds late. `slow`: the same, within the client's timeout.
        `unreadable`: served, then answered with a body that is no Kraken envelope.
        `unavailable`: answered HTTP 503, nothing done. `lost`: answered `delay` seconds late,
        nothing done. `resting`: served, the order left open as though its IOC were not done
        yet. `tradeless` (on a lookup's route): the orders listed without their trade ids, as
        though the venue had not listed them yet."""
        if fault not in REST_FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.rest_faults.append(RestFault(fault, route, times, message, delay))

    def answer(self, request: RestRequest) -> RestAnswer | None:
        public = {"/0/public/Time": self._server_time, "/0/public/AssetPairs": self._asset_pairs}
        if request.method == "GET" and request.path in public:
            return RestAnswer(HTTPStatus.OK, {"error": [], "result": public[request.path]()})
        method = {
            "AddOrder": self._add_order,
            "OpenOrders": self._open_orders,
            "ClosedOrders": self._closed_orders,
            "QueryTrades": self._query_trades,
            "Balance": self._balance,
            "TradeVolume": self._trade_volume,
        }.get(request.path.removeprefix(PRIVATE))
        if request.method != "POST" or not request.path.startswith(PRIVATE) or method is None:
            return None
        lost = self.take_lost(request.path)
        if lost is not None:
            return lost
        fault = self.take_rest_fault(request.path)
        if fault is not None and fault.kind == "unavailable":
            return RestAnswer(HTTPStatus.SERVICE_UNAVAILABLE, {}, 0.0)
        try:
            if fault is not None and fault.kind == "error":
                raise Refusal(fault.message)
            key, params = self._verified(request)
            body = {"error": [], "result": method(key, params)}
            if fault is not None and fault.kind in ("resting", "tradeless"):
                self._withhold(fault.kind, body["result"])
        except Refusal as exc:
            body = {"error": list(exc.args), "result": {}}
        if fault is not None and fault.kind == "unreadable":
            body = "upstream answer cut short"
        late = fault is not None and fault.kind in ("timeout", "slow")
        return RestAnswer(HTTPStatus.OK, body, fault.delay if late else 0.0)

    def _server_time(self) -> dict:
        now = int(self.now())
        day = time.gmtime(now).tm_mday
        # Kraken's rfc1123 pads the day with a space: "Sun,  7 Jun 20 04:07:53 +0000".
        text = time.strftime(f"%a, {day:2d} %b %y %H:%M:%S +0000", time.gmtime(now))
        return {"unixtime": now, "rfc1123": text}

    def _asset_pairs(self) -> dict:
        """GET /0/public/AssetPairs: each pair's increments, as the order checks apply them."""

        def pair(book: VenueBook) -> dict:
            listing = book.listing
            base, quote = _assets(book.symbol)
            return {
                "altname": rest_pair(book.symbol),
                "wsname": "/".join(REST_ASSETS.get(a, a) for a in book.symbol.split("/")),
                "aclass_base": "currency",
                "base": base,
                "aclass_quote": "currency",
                "quote": quote,
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": _places(listing.tick),
                "lot_decimals": _places(listing.lot),  # Kraken's lots are powers of ten
                "lot_multiplier": 1,
                "fee_volume_currency": "ZUSD",
                "ordermin": f"{listing.lot.normalize():f}",
                "costmin": f"{listing.min_notional.normalize():f}",
                "tick_size": f"{listing.tick.normalize():f}",
                "status": "online",
            }

        return {"".join(_assets(symbol)): pair(book) for symbol, book in self.books.items()}

    def _verified(self, request: RestRequest) -> tuple[str, dict[str, str]]:
        """The key and parameters of a request once its key, signature and nonce check out."""
        key = request.headers.get("API-Key", "")
        secret = self.keys.get(key)
        if secret is None:
            raise Refusal("EAPI:Invalid key")
        params = dict(parse_qsl(request.body))
        nonce = params.get("nonce", "")
        expected = api_sign(request.path, request.body, nonce, secret)
        if not hmac.compare_digest(request.headers.get("API-Sign", ""), expected):
            raise Refusal("EAPI:Invalid signature")
        if not nonce.isdigit() or int(nonce) <= self.last_nonce[key]:
            raise Refusal("EAPI:Invalid nonce")
        self.last_nonce[key] = int(nonce)
        return key, params

    def _add_order(self, key: str, params: dict[str, str]) -> dict:
        self.posts[params.get("cl_ord_id", "")] += 1
        book = next(
            (b for b in self.books.values() if rest_pair(b.symbol) == params.get("pair")), None
        )
        if book is None:
            raise Refusal("EQuery:Unknown asset pair")
        if params.get("ordertype") != "limit" or params.get("timeinforce") != "IOC":
            raise Refusal("EGeneral:Invalid arguments:only limit IOC orders are served here")
        listing, side = book.listing, params.get("type")
        try:
            price, volume = Decimal(params["price"]), Decimal(params["volume"])
            deadline = datetime.fromisoformat(params.get("deadline") or "9999-12-31T00:00:00Z")
        except (KeyError, ArithmeticError, ValueError):
            raise Refusal("EGeneral:Invalid arguments") from None
        if deadline.timestamp() < self.now():
            raise Refusal("EService:Deadline elapsed")
        if side not in ("buy", "sell") or price % listing.tick or volume % listing.lot:
            raise Refusal("EGeneral:Invalid arguments")
        if price * volume < listing.min_notional:
            raise Refusal("EOrder:Order minimum not met")
        self._hold(key, book.symbol, side, price, volume)
        txid = self._fill(key, book, params, price, volume)
        return {"descr": {"order": self.orders[txid]["descr"]["order"]}, "txid": [txid]}

    def _withhold(self, kind: str, result: dict) -> None:
        """`resting`: the order just placed stays open; `tradeless`: the orders listed show no
        trade ids."""
        if kind == "resting":
            for txid in result["txid"]:
                self.orders[txid]["status"] = "open"
            return
        for order in (result.get("open") or result.get("closed") or {}).values():
            order["trades"] = []

    def _hold(self, key: str, symbol: str, side: str, price: Decimal, volume: Decimal) -> None:
        """Refuse an order the key's balances cannot cover (a key with none set is not checked)."""
        held = self.balances.get(key)
        if held is None:
            return
        base, quote = _assets(symbol)
        needed = volume if side == "sell" else price * volume * (1 + self.taker_fee_bps / 10_000)
        if held.get(base if side == "sell" else quote, Decimal(0)) < needed:
            raise Refusal(INSUFFICIENT)

    def _fill(
        self, key: str, book: VenueBook, params: dict, price: Decimal, volume: Decimal
    ) -> str:
        """Fill an IOC order against the published book, publish what it took, expire the rest."""
        listing, side = book.listing, params["type"]
        taken_side = "ask" if side == "buy" else "bid"
        taken = book.book.take(taken_side, int(volume / listing.lot), int(price / listing.tick))
        left = book.book.side(taken_side)
        if taken:
            self.publish(book, [(taken_side, p, left.get(p, 0)) for p, _ in taken])
        txid, now = self._txid("O"), time.time()
        executed, cost, fees, trade_ids = Decimal(0), Decimal(0), Decimal(0), []
        for ticks, lots in taken:
            fill_price, fill_volume = ticks * listing.tick, lots * listing.lot
            fill_cost = fill_price * fill_volume
            fee = (fill_cost * self.taker_fee_bps / 10_000).quantize(PLACES, ROUND_HALF_UP)
            trade_id = self._txid("T")
            self.trades[trade_id] = {
                "ordertxid": txid,
                "postxid": self._txid("P"),
                "pair": rest_pair(book.symbol),
                "time": now,
                "type": side,
                "ordertype": "limit",
                "price": _text(fill_price),
                "cost": _text(fill_cost),
                "fee": _text(fee),
                "vol": _text(fill_volume),
                "margin": "0.00000000",
                "misc": "",
                "trade_id": next(self._ids),
                "maker": False,
                "key": key,
            }
            trade_ids.append(trade_id)
            executed, cost, fees = executed + fill_volume, cost + fill_cost, fees + fee
        self._settle(key, book.symbol, side, executed, cost, fees)
        pair = rest_pair(book.symbol)
        self.orders[txid] = {
            "refid": None,
            "userref": 0,
            "cl_ord_id": params.get("cl_ord_id", ""),
            "status": "closed" if executed else "canceled",
            "reason": None if executed == volume else "Liquidity",
            "opentm": now,
            "closetm": now,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair,
                "type": side,
                "ordertype": "limit",
                "price": _text(price),
                "price2": "0",
                "leverage": "none",
                "order": f"{side} {_text(volume)} {pair} @ limit {_text(price)}",
                "close": "",
            },
            "vol": _text(volume),
            "vol_exec": _text(executed),
            "cost": _text(cost),
            "fee": _text(fees),
            "price": _text(cost / executed if executed else Decimal(0)),
            "stopprice": "0.00000000",
            "limitprice": "0.00000000",
            "misc": "",
            "oflags": params.get("oflags", "fciq"),
            "trades": trade_ids,
            "key": key,
        }
        return txid

    def _settle(
        self, key: str, symbol: str, side: str, executed: Decimal, cost: Decimal, fees: Decimal
    ) -> None:
        held = self.balances.get(key)
        if held is None:
            return
        base, quote = _assets(symbol)
        sign = 1 if side == "buy" else -1
        held[base] = held.get(base, Decimal(0)) + sign * executed
        held[quote] = held.get(quote, Decimal(0)) - sign * cost - fees

    def _txid(self, prefix: str) -> str:
        n = next(self._ids)
        return f"{prefix}{n:05X}-{self.rng.randrange(16**5):05X}-{self.rng.randrange(16**6):06X}"

    def _matching(self, key: str, params: dict[str, str], status: str) -> dict[str, dict]:
        wanted = params.get("cl_ord_id")
        start = float(params.get("start") or 0)
        return {
            txid: self._shown(order, params)
            for txid, order in reversed(self.orders.items())  # newest first, as Kraken lists
            if order["key"] == key
            and (order["status"] == "open") == (status == "open")
            and (wanted is None or order["cl_ord_id"] == wanted)
            and order["opentm"] > start
        }

    @staticmethod
    def _shown(order: dict, params: dict[str, str]) -> dict:
        hidden = {"key"} if params.get("trades") == "true" else {"key", "trades"}
        return {k: v for k, v in order.items() if k not in hidden}

    def _open_orders(self, key: str, params: dict[str, str]) -> dict:
        return {"open": self._matching(key, params, "open")}

    def _closed_orders(self, key: str, params: dict[str, str]) -> dict:
        closed = self._matching(key, params, "closed")
        return {"closed": dict(list(closed.items())[:50]), "count": len(closed)}

    def _query_trades(self, key: str, params: dict[str, str]) -> dict:
        wanted = [t for t in params.get("txid", "").split(",") if t]
        if not wanted or len(wanted) > 20:
            raise Refusal("EGeneral:Invalid arguments")
        found = {t: self.trades.get(t) for t in wanted}
        if any(trade is None or trade["key"] != key for trade in found.values()):
            raise Refusal("EQuery:Invalid query")
        return {t: {k: v for k, v in trade.items() if k != "key"} for t, trade in found.items()}

    def _trade_volume(self, key: str, params: dict[str, str]) -> dict:
        pairs = {rest_pair(symbol) for symbol in self.books}
        wanted = [p for p in params.get("pair", "").split(",") if p]
        if any(p not in pairs for p in wanted):
            raise Refusal("EQuery:Unknown asset pair")

        def tier(bps: Decimal) -> dict[str, str]:
            percent = f"{bps / 100:.4f}"
            return {
                "fee": percent,
                "minfee": "0.1000",
                "maxfee": percent,
                "nextfee": percent,
                "tiervolume": "0.0000",
                "nextvolume": "50000.0000",
            }

        return {
            "currency": "ZUSD",
            "volume": "0.0000",
            "fees": {p: tier(self.taker_fee_bps) for p in wanted},
            "fees_maker": {p: tier(self.maker_fee_bps) for p in wanted},
        }

    def _balance(self, key: str, params: dict[str, str]) -> dict:
        return {asset: f"{amount:.10f}" for asset, amount in self.balances.get(key, {}).items()}
