"""The demo desk's account at each simulated venue: the stand-in API keys it signs with and what
it holds at the start. Public on purpose: only the simulated venues take these keys."""

import base64
import hashlib
from collections.abc import Mapping
from decimal import Decimal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from markets.simulator.venue import SimVenue

# What the demo account holds at each simulated venue when it opens: 2 BTC, 30 ETH and 100,000
# of the currency the venue quotes them in.
QUOTES = {"coinbase": "USD", "kraken": "USD", "binance": "USDT", "kucoin": "USDT", "okx": "USDT"}
DEMO_BASES = {"BTC": Decimal(2), "ETH": Decimal(30)}
DEMO_QUOTE = Decimal(100_000)
PASSPHRASE_VENUES = {"kucoin"}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _seed(venue: str) -> bytes:
    return hashlib.sha256(f"arbsite simulated {venue} demo key".encode()).digest()


def demo_key(venue: str) -> tuple[str, str]:
    """The (API key, secret) of the demo account at the simulated `venue`, in the venue's form:
    Coinbase's key name and EC private key in PEM; an HMAC secret elsewhere (Kraken's base64)."""
    if venue == "coinbase":
        scalar = int.from_bytes(_seed(venue)) % (P256_ORDER - 1) + 1
        private = ec.derive_private_key(scalar, ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        return "organizations/demo-desk/apiKeys/simulated", pem
    secret = base64.b64encode(_seed(venue) + _seed(f"{venue} second half")).decode()
    return f"{venue}-demo-desk", secret


def demo_funding(venue: str) -> dict[str, Decimal]:
    """What the demo account holds at the simulated `venue` when it opens, by the venue's names."""
    return {**DEMO_BASES, QUOTES.get(venue, "USD"): DEMO_QUOTE}


def demo_passphrase(venue: str) -> str:
    """The demo key's passphrase at a venue whose keys carry one (KuCoin); "" elsewhere."""
    return "simulated demo desk" if venue in PASSPHRASE_VENUES else ""


def open_demo_accounts(
    venues: dict[str, SimVenue], holdings: Mapping[str, Mapping[str, Decimal]] | None = None
) -> None:
    """Open the demo account at each of `venues` (slug: venue), holding what `holdings` says
    for it (the desk's ledger, when it has traded there before) or else its demo_funding."""
    for slug, venue in venues.items():
        api_key, secret = demo_key(slug)
        funding = (holdings or {}).get(slug) or demo_funding(slug)
        venue.open_account(api_key, secret, dict(funding), demo_passphrase(slug))
