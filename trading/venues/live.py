"""Live venue: immediate-or-cancel limit orders through ccxt's async client.

The client order id comes from the trade, so placing looks the order up first and a retried
task never places a second order. Not yet exercised against a REST stand-in (see the issue note).
"""

from decimal import Decimal

import ccxt.async_support as ccxt

from markets.models import Exchange, ExchangeCredential
from trading.venues.base import FillReport, OrderReport, OrderRequest, taker_fee

TIMEOUT_MS = 5000


class LiveVenue:
    def __init__(
        self, exchange_id: str, *, api_key: str, secret: str, password: str = "", api_url: str = ""
    ) -> None:
        self.exchange_id = exchange_id
        self.config = {
            "apiKey": api_key,
            "secret": secret,
            "password": password,
            "timeout": TIMEOUT_MS,
            "enableRateLimit": False,
        }
        self.api_url = api_url

    @classmethod
    def for_exchange(cls, exchange: Exchange) -> "LiveVenue":
        """The venue with `exchange`'s decrypted credential and REST URL override, if any."""
        credential = ExchangeCredential.objects.get(exchange=exchange)
        return cls(
            exchange.slug,
            api_key=credential.api_key,
            secret=credential.secret,
            password=credential.passphrase,
            api_url=exchange.effective_rest_url(),
        )

    def _client(self):
        client = getattr(ccxt, self.exchange_id)(dict(self.config))
        if self.api_url:
            # Every API section at the override (a stand-in, or a venue's testnet).
            client.urls["api"] = dict.fromkeys(client.urls["api"], self.api_url)
        return client

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        client = self._client()
        try:
            order = await client.fetch_order(
                None, request.venue_symbol, {"origClientOrderId": request.client_order_id}
            )
        except ccxt.OrderNotFound:
            return None
        finally:
            await client.close()
        return _report(order, request)

    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        known = await self.find_order(request)
        if known is not None:
            return known
        client = self._client()
        try:
            order = await client.create_order(
                request.venue_symbol,
                "limit",
                request.side,
                float(request.amount),
                float(request.limit_price),
                {"timeInForce": "IOC", "newClientOrderId": request.client_order_id},
            )
        except ccxt.RequestTimeout:
            # The venue may have the order: its record decides.
            return await self.find_order(request) or OrderReport("", error="timeout, not placed")
        except ccxt.ExchangeError as exc:
            return OrderReport("", error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            await client.close()
        return _report(order, request)


def _report(order: dict, request: OrderRequest) -> OrderReport:
    filled = Decimal(str(order.get("filled") or 0))
    if not filled:
        return OrderReport(str(order.get("id") or ""))
    price = Decimal(str(order.get("average") or order.get("price")))
    fill = FillReport(
        price=price, amount=filled, fee=taker_fee(price * filled, request.taker_fee_bps)
    )
    return OrderReport(str(order.get("id") or ""), fills=(fill,))
