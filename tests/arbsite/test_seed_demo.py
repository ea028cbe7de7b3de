"""seed_demo creates one user per role and the demo venues, and is idempotent."""

import asyncio
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from arbsite.roles import ROLE_PERMISSIONS
from markets.models import Exchange, ExchangeCredential, Listing, Market
from markets.simulator.demo import demo_key, open_demo_accounts
from markets.simulator.server import VenueSimulator
from portfolio.models import Account
from portfolio.reconciliation import drifts_of
from risk.models import RiskProfile
from trading.reconciliation import live_accounts, reconcile

# Seeded as `make run` seeds them; the refusal outside debug is tested below with debug off.
pytestmark = pytest.mark.usefixtures("debug_desk")


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_one_user_per_role_and_a_paper_profile():
    seed()

    users = get_user_model().objects.all()
    assert sorted(u.groups.get().name for u in users) == sorted(ROLE_PERMISSIONS)
    assert Exchange.objects.count() == 5
    assert Listing.objects.count() == 5 * Market.objects.count()
    profile = RiskProfile.objects.get(is_active=True)  # the live one is off
    assert (profile.mode, profile.auto_execute) == ("paper", True)


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing_the_second_time():
    seed()
    before = [
        list(model.objects.order_by("pk").values())
        for model in (get_user_model(), Exchange, Market, Listing, RiskProfile)
    ]

    output = seed()

    after = [
        list(model.objects.order_by("pk").values())
        for model in (get_user_model(), Exchange, Market, Listing, RiskProfile)
    ]
    assert after == before
    assert "nothing changed" in output


@pytest.mark.django_db
def test_demo_user_can_log_in_with_the_demo_password(client):
    seed()

    # The viewer needs no second factor (tests/arbsite/test_twofactor.py: the trader's first login).
    response = client.post("/login/", {"username": "viewer", "password": "demo-desk-2026"})

    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("password", [None, "", "demo-desk-2026"])
def test_seed_demo_outside_debug_refuses_the_published_password_and_creates_nobody(
    settings, monkeypatch, password
):
    # The first comer to log in as this admin would enrol their own second factor and keep it.
    settings.DEBUG = False
    if password is None:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEMO_PASSWORD", password)

    with pytest.raises(CommandError, match="Set DEMO_PASSWORD to a password of your own"):
        seed()

    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_seed_demo_outside_debug_gives_the_demo_users_the_password_set(
    client, settings, monkeypatch
):
    settings.DEBUG = False
    monkeypatch.setenv("DEMO_PASSWORD", "a-desk-of-our-own-7q")
    seed()

    published = client.post("/login/", {"username": "viewer", "password": "demo-desk-2026"})
    own = client.post("/login/", {"username": "viewer", "password": "a-desk-of-our-own-7q"})

    assert (published.status_code, own.status_code) == (200, 302)


def test_the_env_example_does_not_carry_the_published_password():
    lines = (Path(__file__).resolve().parents[2] / ".env.example").read_text().splitlines()

    assert "DEMO_PASSWORD=" in lines  # empty: the full stack's owner sets one


@pytest.mark.django_db
def test_seed_demo_adds_a_live_profile_switched_off_and_live_accounts_at_the_simulated_venues():
    seed()

    live = RiskProfile.objects.get(mode="live")
    assert (live.is_active, live.auto_execute) == (False, True)
    assert RiskProfile.objects.execution_mode() == "paper"
    tradable = {"coinbase", "kraken", "binance", "kucoin"}  # OKX is watched only
    assert set(live.allowed_exchanges.values_list("slug", flat=True)) == tradable
    for slug in tradable:
        credential = ExchangeCredential.objects.get(exchange__slug=slug)
        assert (credential.api_key, credential.secret) == demo_key(slug)
        account = Account.objects.get(exchange__slug=slug, mode="live")
        held = dict(account.balances.values_list("asset", "amount"))
        # What the venue holds, by the ledger's names: its USDT is booked as USD where the desk
        # takes them as one.
        assert held == {"BTC": 2, "ETH": 30, "USD": 100_000}
    assert not ExchangeCredential.objects.filter(exchange__slug="okx").exists()


@pytest.mark.django_db
def test_seed_demo_leaves_a_venue_pointed_elsewhere_without_stand_in_keys():
    Exchange.objects.create(
        slug="kraken",
        name="Kraken",
        ws_url="wss://ws.kraken.com/v2",
        rest_url="https://api.kraken.com",
        taker_fee_bps=Decimal(26),
    )

    seed()

    assert not ExchangeCredential.objects.filter(exchange__slug="kraken").exists()
    assert not Account.objects.filter(exchange__slug="kraken", mode="live").exists()
    assert ExchangeCredential.objects.filter(exchange__slug="coinbase").exists()


@pytest.mark.django_db(transaction=True)
def test_the_simulated_venues_take_the_seeded_keys_and_hold_exactly_what_the_ledger_says(
    loop, monkeypatch
):
    simulator = VenueSimulator()
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    try:
        open_demo_accounts(simulator.venues)
        seed()
        for account in live_accounts():
            slug = account.exchange.slug
            monkeypatch.setenv(f"ARB_{slug.upper()}_REST_URL", simulator.urls[f"{slug}_rest"])

            result = reconcile(account)

            assert result.error == "", slug
            assert [d.drift for d in drifts_of(result)] == [0, 0, 0], slug
    finally:
        asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


@pytest.mark.django_db
def test_seed_demo_says_which_listings_quote_in_usdt_and_that_the_desk_takes_it_as_usd():
    seed()

    usdt = Listing.objects.filter(quote_currency="USDT")
    assert sorted({listing.exchange.slug for listing in usdt}) == ["binance", "kucoin", "okx"]
    assert all(listing.quote_interchangeable for listing in usdt)
    assert not Listing.objects.filter(quote_currency="", quote_interchangeable=True).exists()
