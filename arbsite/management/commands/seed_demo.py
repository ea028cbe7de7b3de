"""Create demo users (one per role), venues, markets, the paper risk profile (on) and a live one
(off) with stand-in keys for the simulated venues, so a risk manager can switch live trading on."""

import os
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, STAFF_ROLES, TRADER, VIEWER
from markets.models import Exchange, ExchangeCredential, Listing, Market
from markets.simulator.demo import demo_funding, demo_key, demo_passphrase
from markets.venues.live import ORDER_CLASSES
from portfolio.models import Account, Mode
from portfolio.reconciliation import booked_as
from portfolio.services import open_account
from risk.models import RiskProfile

DEMO_USERS = {"viewer": VIEWER, "trader": TRADER, "risk": RISK_MANAGER, "admin": ADMINISTRATOR}


def exchanges_at(sim: str) -> dict[str, tuple[str, str, str, str, str]]:
    """slug: (name, ws_url, rest_url, taker bps, maker bps) of the simulated venues at `sim`."""
    sim_http = sim.replace("ws://", "http://", 1)
    return {
        "coinbase": ("Coinbase", f"{sim}/coinbase", f"{sim_http}/coinbase", "40", "25"),
        "kraken": ("Kraken", f"{sim}/kraken/v2", f"{sim_http}/kraken", "26", "16"),
        "binance": ("Binance", f"{sim}/binance", f"{sim_http}/binance", "10", "10"),
        "okx": ("OKX", f"{sim}/okx/ws/v5/public", f"{sim_http}/okx", "10", "8"),
        "kucoin": ("KuCoin", f"{sim}/kucoin/endpoint", f"{sim_http}/kucoin", "10", "10"),
    }


EXCHANGES = exchanges_at(os.environ.get("SIMULATOR_URL", "ws://127.0.0.1:8765"))
# market: {venue: (venue symbol, tick size, lot size[, quote currency])}. A fourth value is the
# currency the venue quotes in instead of the market's: the demo desk takes USDT as USD.
MARKETS = {
    "BTC-USD": {
        "coinbase": ("BTC-USD", "0.01", "0.00000001"),
        "kraken": ("BTC/USD", "0.1", "0.00000001"),
        "binance": ("BTCUSDT", "0.01", "0.00001", "USDT"),
        "okx": ("BTC-USDT", "0.1", "0.00000001", "USDT"),
        "kucoin": ("BTC-USDT", "0.1", "0.00000001", "USDT"),
    },
    "ETH-USD": {
        "coinbase": ("ETH-USD", "0.01", "0.00000001"),
        "kraken": ("ETH/USD", "0.01", "0.00000001"),
        "binance": ("ETHUSDT", "0.01", "0.0001", "USDT"),
        "okx": ("ETH-USDT", "0.01", "0.000001", "USDT"),
        "kucoin": ("ETH-USDT", "0.01", "0.0000001", "USDT"),
    },
}
# What each demo venue's paper account is funded with, by asset.
PAPER_FUNDING = {"USD": Decimal(100_000), "BTC": Decimal(2), "ETH": Decimal(30)}
LIVE_PROFILE = "Live on the simulated venues"
# In the README for `make run`: anyone can log in with it, so only a debug desk may use it.
PUBLISHED_PASSWORD = "demo-desk-2026"


def demo_password() -> str:
    """DEMO_PASSWORD, or the published password when it is unset or empty."""
    return os.environ.get("DEMO_PASSWORD") or PUBLISHED_PASSWORD


def second_factor_note() -> str:
    """Which demo users log in with a code, and how they get one (OTP_REQUIRED_ROLES)."""
    with_code = [user for user, role in DEMO_USERS.items() if role in settings.OTP_REQUIRED_ROLES]
    without = [user for user in DEMO_USERS if user not in with_code]
    note = (
        f"seed_demo: {', '.join(with_code) or 'no demo user'} log in with a second factor: at the "
        "first login the page shows a QR code and a key for an authenticator app (or "
        "`oathtool --totp -b KEY`), then asks for its 6-digit code at every login"
    )
    return note + (f"; {', '.join(without)} with the password alone." if without else ".")


class Command(BaseCommand):
    help = "Create the demo data; running it again changes nothing."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        # The first comer to log in as the demo admin with a known password would also set up
        # its second factor, and keep it.
        if not settings.DEBUG and demo_password() == PUBLISHED_PASSWORD:
            raise CommandError(
                "seed_demo: DJANGO_DEBUG is off and DEMO_PASSWORD is unset or the published demo "
                "password, which would let anyone log in as the demo administrator. Set "
                "DEMO_PASSWORD to a password of your own (in .env for docker compose), or run "
                "with DJANGO_DEBUG=1 for a local demo."
            )
        created = (
            self.seed_users()
            + self.seed_venues()
            + self.seed_profile()
            + self.seed_accounts()
            + self.seed_live()
        )
        self.stdout.write(
            f"seed_demo: {created} objects created"
            if created
            else "seed_demo: demo data already present, nothing changed"
        )
        self.stdout.write(second_factor_note())

    def seed_users(self) -> int:
        created = 0
        user_model = get_user_model()
        for username, role in DEMO_USERS.items():
            user, is_new = user_model.objects.get_or_create(
                username=username, defaults={"is_staff": role in STAFF_ROLES}
            )
            if is_new:
                user.set_password(demo_password())
                user.save()
                user.groups.add(Group.objects.get(name=role))
                created += 1
        return created

    def seed_venues(self) -> int:
        created = 0
        for slug, (name, ws_url, rest_url, taker, maker) in EXCHANGES.items():
            _, is_new = Exchange.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "ws_url": ws_url,
                    "rest_url": rest_url,
                    "taker_fee_bps": Decimal(taker),
                    "maker_fee_bps": Decimal(maker),
                },
            )
            created += is_new
        for symbol, listings in MARKETS.items():
            base, quote = symbol.split("-")
            market, is_new = Market.objects.get_or_create(
                symbol=symbol, defaults={"base": base, "quote": quote}
            )
            created += is_new
            for slug, (venue_symbol, tick, lot, *quote) in listings.items():
                _, is_new = Listing.objects.get_or_create(
                    exchange=Exchange.objects.get(slug=slug),
                    market=market,
                    defaults={
                        "venue_symbol": venue_symbol,
                        "tick_size": Decimal(tick),
                        "lot_size": Decimal(lot),
                        "quote_currency": "".join(quote),
                        "quote_interchangeable": bool(quote),
                    },
                )
                created += is_new
        return created

    def seed_profile(self) -> int:
        if RiskProfile.objects.active(Mode.PAPER) is not None:
            return 0
        return self._profile("Paper default", Mode.PAPER, active=True)

    def _profile(self, name: str, mode: str, *, active: bool, venues=None) -> int:
        profile, is_new = RiskProfile.objects.get_or_create(
            name=name,
            defaults={
                "mode": mode,
                "is_active": active,
                "auto_execute": True,
                "min_profit_bps": Decimal(2),
                "max_notional": Decimal(2000),
                # The demo accounts hold about 220,000 USD of value per venue.
                "max_position": Decimal(1_000_000),
            },
        )
        if is_new:
            profile.allowed_exchanges.set(Exchange.objects.all() if venues is None else venues)
            profile.allowed_markets.set(Market.objects.all())
        return int(is_new)

    def seed_accounts(self) -> int:
        """One paper account per demo venue, funded by deposits when first opened."""
        assets = {a for m in Market.objects.all() for a in (m.base, m.quote)}
        funding = {asset: amount for asset, amount in PAPER_FUNDING.items() if asset in assets}
        created = 0
        for exchange in Exchange.objects.filter(slug__in=EXCHANGES):
            if Account.objects.filter(exchange=exchange, mode=Mode.PAPER).exists():
                continue
            open_account(exchange=exchange, mode=Mode.PAPER, funding=funding)
            created += 1
        return created

    def seed_live(self) -> int:
        """At each venue the desk can trade live that points at the simulated ones: the
        stand-in key they take for the demo desk, and a live account holding what the
        simulated venue holds for it, by the ledger's names (so ledger and venue agree); then a
        live profile on those venues, off, that a risk manager switches on."""
        created = 0
        tradable = []
        for slug, (_, _, rest_url, _, _) in EXCHANGES.items():
            exchange = Exchange.objects.filter(slug=slug, rest_url=rest_url).first()
            if exchange is None or slug not in ORDER_CLASSES:
                continue
            tradable.append(exchange)
            if not ExchangeCredential.objects.filter(exchange=exchange).exists():
                api_key, secret = demo_key(slug)
                credential = ExchangeCredential(exchange=exchange)
                credential.set_keys(
                    api_key=api_key, secret=secret, passphrase=demo_passphrase(slug)
                )
                credential.save()
                created += 1
            if not Account.objects.filter(exchange=exchange, mode=Mode.LIVE).exists():
                names = booked_as(exchange)
                funding = {names.get(a, a): v for a, v in demo_funding(slug).items()}
                open_account(exchange=exchange, mode=Mode.LIVE, funding=funding)
                created += 1
        if RiskProfile.objects.filter(mode=Mode.LIVE).exists():
            return created
        return created + self._profile(LIVE_PROFILE, Mode.LIVE, active=False, venues=tradable)
