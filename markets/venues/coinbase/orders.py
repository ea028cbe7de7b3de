"""Live venue: immediate-or-cancel limit orders on Coinbase Advanced Trade's REST API (ES256 JWTs).

Orders go through the raw create endpoint with our own client order id (ccxt's createOrder would
replace it). Coinbase has no lookup by client id, so an order is found by listing the product's
orders since the trade was created and matching the id, before it is placed and whenever an
answer leaves its fate unknown: a retry never places a second order.
"""

import asyncio
import base64
import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from markets.money import plain
from markets.venues.orders import (
    FeeTier,
    FillReport,
    KeyedVenue,
    KeyRights,
    OpenOrder,
    OrderReport,
    OrderRequest,
    OrderUnknown,
    VenueError,
    skew,
    whole,
)

log = logging.getLogger(__name__)

API_URL = "https://api.coinbase.com"
BROKERAGE = "/api/v3/brokerage"
# Lookups after an unanswered order before it is left to `recover_trades`, and the pause
# between them.
LOOKUPS = 3
PAUSE = 0.5
JWT_SECONDS = 120  # Coinbase refuses a JWT that lives longer
DUPLICATE = "DUPLICATE_CLIENT_ORDER_ID"
# Statuses after which an order's fills are all it will ever have.
DONE = {"FILLED", "CANCELLED", "EXPIRED", "FAILED"}
# `arb-<trade>-<created ms, hex>-<leg>` (trading.execution.orders.client_order_id).
CREATED = re.compile(r"\Aarb-\d+-([0-9a-f]+)-")
SKEW = timedelta(minutes=1)  # the venue's clock against ours, when listing from the creation
LOOKBACK = timedelta(days=1)  # how far back to list for an id that does not carry its creation


class Unanswered(Exception):
    """The request may have reached the venue, but its answer did not come back readable."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def build_jwt(key_name: str, private_key_pem: str, uri: str, *, now: int | None = None) -> str:
    """The ES256 JWT for one request to `uri` ("POST api.coinbase.com/api/v3/..."), as Coinbase's
    own SDK builds it: signed with the key's EC private key, valid for two minutes."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a Coinbase secret is an EC private key in PEM")
    stamp = int(time.time()) if now is None else now
    header = {"alg": "ES256", "kid": key_name, "nonce": secrets.token_hex(), "typ": "JWT"}
    claims = {"sub": key_name, "iss": "cdp", "nbf": stamp, "exp": stamp + JWT_SECONDS, "uri": uri}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class LiveVenue(KeyedVenue):
    """One venue that speaks Coinbase Advanced Trade's REST API (coinbase.com or a stand-in)."""

    def __init__(self, *, api_key: str, secret: str, api_url: str = "", **kwargs) -> None:
        # Key files hold the PEM with its newlines escaped; either form works.
        secret = secret.replace("\\n", "\n")
        super().__init__(api_key=api_key, secret=secret, api_url=api_url or API_URL, **kwargs)

    def uri(self, method: str, path: str) -> str:
        """The JWT's `uri` claim for `path` below the brokerage API: no scheme, no query."""
        url = urlsplit(self.api_url)
        return f"{method} {url.netloc}{url.path}{BROKERAGE}{path}"

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        async with self._session() as session:
            try:
                return await self._lookup(session, request)
            except Unanswered as exc:
                raise OrderUnknown(f"{request.client_order_id}: lookup failed: {exc}") from exc

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        async with self._session() as session:
            try:
                known = await self._lookup(session, request)
            except Unanswered as exc:
                return OrderReport("", error=f"not sent, lookup failed: {exc}"[:200])
            except ValueError as exc:  # the secret is no EC key: nothing can be signed
                return OrderReport("", error=f"not sent, bad credential: {exc}"[:200])
            if known is not None:
                return known
            return await self._place(session, request)

    async def fetch_fees(self, venue_symbols: list[str]) -> FeeTier:
        """The account's tier (Coinbase's is one for every product)."""
        async with self._session() as session:
            try:
                status, answer = await self._call(session, "GET", "/transaction_summary")
            except (Unanswered, ValueError) as exc:
                raise VenueError(f"fee tier unread: {exc}"[:200]) from exc
        try:
            tier = answer["fee_tier"]
            rates = Decimal(tier["taker_fee_rate"]), Decimal(tier["maker_fee_rate"])
        except (KeyError, TypeError, ArithmeticError):
            raise VenueError(f"fee tier unread: {_refusal(status, answer)}"[:200]) from None
        return FeeTier(taker_bps=rates[0] * 10_000, maker_bps=rates[1] * 10_000)

    async def fetch_balances(self) -> dict[str, Decimal]:
        """Every wallet's available amount plus what is on hold, by currency."""
        async with self._session() as session:
            try:
                wallets = await self._pages(session, "/accounts", {"limit": 250}, "accounts")
            except (Unanswered, ValueError) as exc:
                raise VenueError(f"balances unread: {exc}"[:200]) from exc
        held: dict[str, Decimal] = {}
        try:
            for wallet in wallets:
                amount = Decimal(wallet["available_balance"]["value"])
                amount += Decimal((wallet.get("hold") or {}).get("value") or 0)
                held[wallet["currency"]] = held.get(wallet["currency"], Decimal(0)) + amount
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise VenueError(f"balances unread: {type(exc).__name__}: {exc}"[:200]) from None
        return held

    async def fetch_open_orders(self) -> list[OpenOrder]:
        async with self._session() as session:
            try:
                listed = await self._pages(
                    session, "/orders/historical/batch", {"order_status": ["OPEN"]}, "orders"
                )
            except (Unanswered, ValueError) as exc:
                raise VenueError(f"open orders unread: {exc}"[:200]) from exc
        try:
            return [_open_order(o) for o in listed]
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise VenueError(f"open orders unread: {type(exc).__name__}: {exc}"[:200]) from None

    async def key_rights(self) -> KeyRights:
        """GET /key_permissions: what the key may do, as the venue holds it."""
        async with self._session() as session:
            try:
                status, answer = await self._call(session, "GET", "/key_permissions")
            except (Unanswered, ValueError) as exc:
                raise VenueError(f"key permissions unread: {exc}"[:200]) from exc
        flags = {name: answer.get(name) for name in ("can_view", "can_trade", "can_transfer")}
        if status != 200 or not all(isinstance(flag, bool) for flag in flags.values()):
            raise VenueError(f"key permissions unread: {_refusal(status, answer)}"[:200])
        return KeyRights(
            trade=flags["can_trade"],
            # Coinbase has one right for sending funds anywhere: to an address or an account.
            withdraw=flags["can_transfer"],
            transfer=flags["can_transfer"],
            stated=", ".join(f"{name}={str(flag).lower()}" for name, flag in flags.items()),
        )

    async def clock_skew(self) -> float:
        """From GET /time, public: signed by nothing, so it answers whatever the key."""
        url = f"{self.api_url}{BROKERAGE}/time"
        try:
            async with self._session() as session:
                sent = time.time()
                async with session.get(url) as response:
                    text, status = await response.text(), response.status
                answered = time.time()
            return skew(int(json.loads(text)["epochMillis"]) / 1000, sent, answered)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VenueError(f"server time unread: {type(exc).__name__}: {exc}"[:200]) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise VenueError(f"server time unread: HTTP {status}: {text[:100]}"[:200]) from exc

    def _session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=self.timeout_ms / 1000)
        return aiohttp.ClientSession(timeout=timeout)

    async def _call(
        self, session: aiohttp.ClientSession, method: str, path: str, *, query=None, body=None
    ) -> tuple[int, dict]:
        """The status and JSON object of one signed request; Unanswered when there is none."""
        url = f"{self.api_url}{BROKERAGE}{path}"
        if query:
            url += "?" + urlencode(query, doseq=True)
        token = build_jwt(self.api_key, self.secret, self.uri(method, path))
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with session.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unanswered(f"{type(exc).__name__}: {exc}") from exc
        if status >= 500:
            raise Unanswered(f"HTTP {status}: {text[:100]}")
        try:
            answer = json.loads(text)
        except ValueError:
            raise Unanswered(f"HTTP {status}, not JSON: {text[:100]}") from None
        if not isinstance(answer, dict):
            raise Unanswered(f"HTTP {status}, not a JSON object: {text[:100]}")
        return status, answer

    async def _place(self, session: aiohttp.ClientSession, request: OrderRequest) -> OrderReport:
        try:
            placed = await self._post(session, request)
        except Unanswered as exc:
            return await self._settle_unknown(session, request, str(exc))
        if placed is None:
            return await self._settle_unknown(session, request, DUPLICATE)
        return placed

    async def _post(
        self, session: aiohttp.ClientSession, request: OrderRequest
    ) -> OrderReport | None:
        """Send the order; None when the venue answers that it already has its client id."""
        body = {
            "client_order_id": request.client_order_id,
            "product_id": request.venue_symbol,
            "side": request.side.upper(),
            "order_configuration": {
                "sor_limit_ioc": {
                    "base_size": plain(request.amount),
                    "limit_price": plain(request.limit_price),
                }
            },
        }
        status, answer = await self._call(session, "POST", "/orders", body=body)
        if answer.get("success") is True:
            # A known client id answers with the order it already has: the same reading either way.
            order_id = (answer.get("success_response") or {}).get("order_id") or answer.get(
                "order_id"
            )
            return await self._read(session, request, str(order_id))
        reason = _refusal(status, answer)
        if DUPLICATE in reason:
            return None
        return OrderReport("", error=reason[:200])

    async def _settle_unknown(
        self, session: aiohttp.ClientSession, request: OrderRequest, cause: str
    ) -> OrderReport:
        """The venue's record of an order whose answer was lost, or whose id it says it has;
        OrderUnknown if it cannot say."""
        log.warning("order %s: %s; looking it up", request.client_order_id, cause)
        refusal = ""
        for attempt in range(LOOKUPS):
            if attempt:
                await asyncio.sleep(PAUSE)
            try:
                found = await self._lookup(session, request)
                if found is None:
                    # Not listed (the listing may lag): the same client id again is the venue's
                    # own guard. It answers with the order it has, refuses the id, or places the
                    # order now, once.
                    found = await self._post(session, request)
            except Unanswered:
                continue
            if found is not None and not found.venue_order_id:
                # A refused re-send is not the first order's fate: that one may have filled
                # (and spent the funds the re-send lacks), or the refusal was a 429.
                refusal = f"; the re-send refused: {found.error}"
                continue
            if found is not None:
                return found
        raise OrderUnknown(f"{request.client_order_id}: {cause}; lookups failed{refusal}"[:200])

    async def _lookup(
        self, session: aiohttp.ClientSession, request: OrderRequest
    ) -> OrderReport | None:
        """The order with `request`'s client id among the product's orders since its creation."""
        query = {
            "product_ids": [request.venue_symbol],
            "start_date": _since(request.client_order_id).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for order in await self._pages(session, "/orders/historical/batch", query, "orders"):
            if order.get("client_order_id") == request.client_order_id:
                return await self._report(session, request, order)
        return None

    async def _read(
        self, session: aiohttp.ClientSession, request: OrderRequest, order_id: str
    ) -> OrderReport:
        """The order the venue took, read back by its id; OrderUnknown if it cannot be."""
        try:
            status, answer = await self._call(session, "GET", f"/orders/historical/{order_id}")
        except Unanswered as exc:
            raise OrderUnknown(f"{request.client_order_id}: placed, unread: {exc}") from exc
        if status != 200 or "order" not in answer:
            raise OrderUnknown(
                f"{request.client_order_id}: placed, unread: {_refusal(status, answer)}"
            )
        return await self._report(session, request, answer["order"])

    async def _report(
        self, session: aiohttp.ClientSession, request: OrderRequest, order: dict
    ) -> OrderReport:
        order_id = str(order["order_id"])
        if order.get("status") not in DONE:
            # An IOC order is done at once; until the venue says so its fills may be incomplete.
            raise OrderUnknown(f"{request.client_order_id}: {order.get('status')} at the venue")
        filled = Decimal(order.get("filled_size") or 0)
        if not filled:
            return OrderReport(order_id)
        try:
            fills = await self._pages(
                session, "/orders/historical/fills", {"order_ids": [order_id]}, "fills"
            )
        except Unanswered as exc:
            # The venue has the order: it must not read as refused, so leave it for recovery.
            raise OrderUnknown(f"{request.client_order_id}: fills unread: {exc}") from exc
        report = OrderReport(order_id, fills=tuple(_fill_report(f) for f in fills))
        return whole(report, filled, request, "filled")

    async def _pages(
        self, session: aiohttp.ClientSession, path: str, query: dict, key: str
    ) -> list[dict]:
        """Every row of a listing under `key`, following its cursor."""
        rows: list[dict] = []
        cursor = ""
        while True:
            status, answer = await self._call(
                session, "GET", path, query={**query, "cursor": cursor} if cursor else query
            )
            if status != 200 or not isinstance(answer.get(key), list):
                raise Unanswered(_refusal(status, answer))
            rows += answer[key]
            cursor = answer.get("cursor") or ""
            if not cursor or answer.get("has_next") is False:
                return rows


def _since(client_order_id: str) -> datetime:
    """When to list from: the trade's creation (our client ids carry it), less the clock skew."""
    created = CREATED.match(client_order_id)
    if created is None:
        return datetime.now(UTC) - LOOKBACK
    return datetime.fromtimestamp(int(created[1], 16) / 1000, UTC) - SKEW


def _open_order(order: dict) -> OpenOrder:
    """A resting order; its size and limit are in whichever configuration it was placed with."""
    config = next(iter((order.get("order_configuration") or {}).values()), {})
    size = Decimal(config.get("base_size") or 0) - Decimal(order.get("filled_size") or 0)
    return OpenOrder(
        venue_order_id=str(order["order_id"]),
        client_order_id=order.get("client_order_id") or "",
        venue_symbol=order["product_id"],
        side=str(order["side"]).lower(),
        amount=size,
        price=Decimal(config.get("limit_price") or 0),
    )


def _fill_report(fill: dict) -> FillReport:
    """One of the venue's fills; Coinbase takes its commission in the quote."""
    price, size = Decimal(fill["price"]), Decimal(fill["size"])
    amount = size / price if fill.get("size_in_quote") else size
    return FillReport(price, amount, Decimal(fill["commission"]))


def _refusal(status: int, answer: dict) -> str:
    """The venue's words for a refusal: `error_response` of a `success:false` body, or the error
    of an HTTP error body."""
    error = answer.get("error_response")
    if isinstance(error, dict):
        code = error.get("new_order_failure_reason") or error.get("error") or "UNKNOWN"
        message = error.get("message") or error.get("error_details") or ""
        return f"{code}: {message}" if message else code
    if answer.get("errors"):
        first = answer["errors"][0]
        return f"HTTP {status} {first.get('id', '')}: {first.get('message', '')}"
    code = answer.get("error", "")
    message = answer.get("message") or answer.get("error_details") or ""
    return f"HTTP {status} {code}: {message}".rstrip(": ")
