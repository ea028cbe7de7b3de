"""The venue interface the execution path uses, its plain value types and the fill maths, and
the key holder every live venue's orders module starts from."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, Self

# A live venue's client gives up on a call after this long (each module's LiveVenue).
TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An immediate-or-cancel limit order: fill what the book has up to `limit_price` now."""

    client_order_id: str
    venue: str
    market: str
    venue_symbol: str
    side: str
    amount: Decimal
    limit_price: Decimal
    taker_fee_bps: Decimal


@dataclass(frozen=True, slots=True)
class FillReport:
    """One fill. `fee` is valued in quote: what PnL counts. A venue that took its commission in
    another asset (Binance takes a buy's from the base it delivers, or BNB) names that asset and
    the amount taken, which is what the ledger books: the account holds that much less of it."""

    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str = ""  # "" when the fee was taken in quote
    fee_charged: Decimal = Decimal(0)  # in `fee_asset`, when it is set


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What the venue did with an order; no fills and an `error` when it refused it."""

    venue_order_id: str
    fills: tuple[FillReport, ...] = ()
    error: str = ""

    @property
    def filled(self) -> Decimal:
        return sum((f.amount for f in self.fills), Decimal(0))


@dataclass(frozen=True, slots=True)
class FeeTier:
    """The account's fee tier at a venue, in basis points of a fill's quote notional."""

    taker_bps: Decimal
    maker_bps: Decimal


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order resting at the venue: its ids, symbol, side, size left and limit."""

    venue_order_id: str
    client_order_id: str
    venue_symbol: str
    side: str
    amount: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class KeyRights:
    """What a venue says an API key may do, and its own words for it (`stated`)."""

    trade: bool
    withdraw: bool  # send funds off the venue
    transfer: bool  # move funds to another account or wallet of the venue
    stated: str  # e.g. "enableSpotAndMarginTrading=true, enableWithdrawals=false"


class OrderUnknown(Exception):
    """The venue could not say whether it has the order: it stays submitted for recovery."""


def whole(report: OrderReport, executed: Decimal, request: OrderRequest, field: str) -> OrderReport:
    """`report`, when its fills add up to what the venue says the order executed (its `field`);
    OrderUnknown when they do not (fills not listed yet, or some missing): the ledger would not
    hold them, so the order is left for recovery."""
    if report.filled != executed:
        raise OrderUnknown(
            f"{request.client_order_id}: fills short of the {field} {format(executed, 'f')}"
        )
    return report


class VenueError(Exception):
    """The venue gave no readable answer about the account (its fees, its balances)."""


class Venue(Protocol):
    async def place_ioc(self, request: OrderRequest) -> OrderReport:
        """Place `request` once: if the venue already has its client order id, report that."""

    async def find_order(self, request: OrderRequest) -> OrderReport | None:
        """The venue's record of `request.client_order_id`, or None if it never got it."""

    async def fetch_fees(self, venue_symbols: list[str]) -> FeeTier:
        """The account's fee tier: the highest taker and maker rate over `venue_symbols`."""

    async def fetch_balances(self) -> dict[str, Decimal]:
        """What the account holds at the venue, by asset: free plus held in open orders."""

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """Every order resting at the venue for the account, on any symbol."""

    async def key_rights(self) -> KeyRights | None:
        """What the venue says the key may do; None for a venue that does not tell (Kraken)."""

    async def clock_skew(self) -> float:
        """Seconds the venue's clock is ahead of ours (behind if negative), from its public
        server time."""


def skew(venue_s: float, sent_s: float, answered_s: float) -> float:
    """The venue's clock less ours: it read its clock somewhere between our sending and its
    answer arriving, so against the middle of that round trip (off by at most half of it)."""
    return venue_s - (sent_s + answered_s) / 2


def take_levels(
    levels: list[tuple[Decimal, Decimal]], *, side: str, amount: Decimal, limit: Decimal
) -> list[tuple[Decimal, Decimal]]:
    """Walk `levels` (the asks for a buy, the bids for a sell, best first) up to `limit`.

    Returns the (price, amount) taken at each level; what is beyond the limit does not fill.
    """
    taken: list[tuple[Decimal, Decimal]] = []
    left = amount
    for price, size in levels:
        if left <= 0 or (price > limit if side == "buy" else price < limit):
            break
        take = min(size, left)
        taken.append((price, take))
        left -= take
    return taken


class KeyedVenue:
    """A live venue's API key, secret (and passphrase, where the venue has one), REST URL and
    client timeout: what each venue's `LiveVenue` builds its signed calls from."""

    def __init__(
        self,
        *,
        api_key: str,
        secret: str,
        passphrase: str = "",
        api_url: str = "",
        timeout_ms: int | None = None,
    ) -> None:
        self.api_key, self.secret, self.passphrase = api_key, secret, passphrase
        self.api_url = api_url.rstrip("/")
        self.timeout_ms = timeout_ms or TIMEOUT_MS

    @classmethod
    def for_exchange(cls, exchange, *, timeout_ms: int | None = None) -> Self:
        """The venue with `exchange`'s decrypted credential and REST URL (override), if any."""
        from markets.models import ExchangeCredential  # the pure code imports this module

        credential = ExchangeCredential.objects.get(exchange=exchange)
        return cls(
            api_key=credential.api_key,
            secret=credential.secret,
            passphrase=credential.passphrase,
            api_url=exchange.effective_rest_url(),
            timeout_ms=timeout_ms,
            **cls.from_credential(credential),
        )

    @classmethod
    def from_credential(cls, credential) -> dict[str, Any]:
        """What else a venue's LiveVenue takes from the stored credential (Kraken: its nonces)."""
        return {}
