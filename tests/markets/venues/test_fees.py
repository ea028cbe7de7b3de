"""`sync_fees` (the command, the hourly task and the Exchange admin's action): each live venue's
fees become the account's tier as the venue states it, audited; a venue that cannot say leaves
the row as it was, with a clear reason."""

import asyncio
from decimal import Decimal
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.urls import reverse

from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR
from markets.models import Exchange, ExchangeCredential
from markets.simulator.demo import demo_funding, demo_key
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.tasks import sync_venue_fees
from markets.venues.fees import sync_fees
from markets.venues.rules import VenueUnavailable
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory

D = Decimal
SYMBOLS = {"coinbase": "BTC-USD", "kraken": "BTC/USD", "binance": "BTCUSDT"}
# What each simulated venue charges the demo key; the rows start at other figures.
TIERS = {
    "coinbase": (D("60"), D("40")),
    "kraken": (D("23.5"), D("11.25")),
    "binance": (D(10), D(9)),
}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim(loop):
    listings = {slug: SimListing(symbol, D("0.1"), D("0.0001")) for slug, symbol in SYMBOLS.items()}
    markets = {"BTC-USD": MarketSpec(mid=D(100), size=D(1), listings=listings)}
    still = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)
    simulator = VenueSimulator(markets=markets, profiles=dict.fromkeys(SYMBOLS, still))
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    for slug, venue in simulator.venues.items():
        venue.open_account(*demo_key(slug), demo_funding(slug))
        venue.taker_fee_bps, venue.maker_fee_bps = TIERS[slug]
    yield simulator
    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


@pytest.fixture
def venues(sim, settings) -> dict[str, Exchange]:
    """The three exchanges at their simulated venues with the demo keys, at 99 / 98 bps."""
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    market = MarketFactory(symbol="BTC-USD")
    rows = {}
    for slug, symbol in SYMBOLS.items():
        exchange = ExchangeFactory(
            slug=slug, rest_url=sim.urls[f"{slug}_rest"], taker_fee_bps=99, maker_fee_bps=98
        )
        ListingFactory(exchange=exchange, market=market, venue_symbol=symbol)
        credential = ExchangeCredential(exchange=exchange)
        api_key, secret = demo_key(slug)
        credential.set_keys(api_key=api_key, secret=secret)
        credential.save()
        rows[slug] = exchange
    return rows


def fees(slug: str) -> tuple[Decimal, Decimal]:
    row = Exchange.objects.get(slug=slug)
    return row.taker_fee_bps, row.maker_fee_bps


@pytest.mark.parametrize("slug", list(SYMBOLS))
def test_a_venues_fees_become_the_accounts_tier_there_and_the_change_is_audited(venues, slug):
    result = sync_fees(venues[slug])

    assert fees(slug) == TIERS[slug]
    assert Exchange.objects.get(slug=slug).fees_synced_at is not None
    taker, maker = TIERS[slug]
    assert (
        result.summary()
        == f"{slug}: taker 99.000 -> {taker:.3f} bps, maker 98.000 -> {maker:.3f} bps"
    )
    event = AuditEvent.objects.get(action="fees synced")
    assert (event.object_id, event.user) == (str(venues[slug].pk), None)
    assert event.before == {"taker_fee_bps": "99.000", "maker_fee_bps": "98.000"}
    assert event.after == {"taker_fee_bps": f"{taker:.3f}", "maker_fee_bps": f"{maker:.3f}"}


def test_fees_already_at_the_tier_are_left_and_not_audited_again(venues):
    sync_fees(venues["kraken"])

    again = sync_fees(venues["kraken"])

    assert not again.changed
    assert again.summary() == "kraken: taker 23.500, maker 11.250 bps, unchanged"
    assert AuditEvent.objects.filter(action="fees synced").count() == 1


def test_a_venue_that_refuses_the_key_leaves_the_fees_and_says_why(venues, sim):
    sim.venues["binance"].keys.clear()

    with pytest.raises(VenueUnavailable) as refused:
        sync_fees(venues["binance"])

    assert str(refused.value) == (
        "binance: fees unread: AuthenticationError: Invalid API-key, IP, or permissions for action."
    )
    assert fees("binance") == (D(99), D(98))
    assert not AuditEvent.objects.filter(action="fees synced").exists()


def test_a_venue_without_a_credential_cannot_tell_the_accounts_fees(venues):
    ExchangeCredential.objects.filter(exchange__slug="coinbase").delete()

    with pytest.raises(VenueUnavailable) as refused:
        sync_fees(venues["coinbase"])

    assert "coinbase: no API credential" in str(refused.value)
    assert fees("coinbase") == (D(99), D(98))


def test_the_command_syncs_every_venue_with_a_key_and_reports_each(venues, sim):
    sim.venues["kraken"].keys.clear()
    out, err = StringIO(), StringIO()

    call_command("sync_fees", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "binance: taker 99.000 -> 10.000 bps, maker 98.000 -> 9.000 bps",
        "coinbase: taker 99.000 -> 60.000 bps, maker 98.000 -> 40.000 bps",
    ]
    assert err.getvalue().startswith("kraken: fees unread: ")
    assert "EAPI:Invalid key" in err.getvalue()
    assert fees("kraken") == (D(99), D(98))


def test_the_command_fails_when_no_venue_can_say(venues):
    ExchangeCredential.objects.all().delete()

    with pytest.raises(CommandError, match="No enabled venue with an API credential"):
        call_command("sync_fees", stdout=StringIO())


def test_the_hourly_task_syncs_the_fees(venues, settings):
    assert settings.CELERY_BEAT_SCHEDULE["sync-venue-fees"] == {
        "task": "markets.tasks.sync_venue_fees",
        "schedule": 3600.0,
    }

    sync_venue_fees.apply()  # as the beat's worker runs it

    assert {slug: fees(slug) for slug in SYMBOLS} == TIERS


def test_an_administrator_syncs_fees_from_the_admin_and_the_event_names_them(
    client, user_with_role, venues
):
    administrator = user_with_role(ADMINISTRATOR)
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)

    response = client.post(
        reverse("admin:markets_exchange_changelist"),
        {"action": "sync_venue_fees", "_selected_action": [venues["kraken"].pk]},
        follow=True,
    )

    shown = [str(message) for message in response.context["messages"]]
    assert "kraken: taker 99.000 -> 23.500 bps, maker 98.000 -> 11.250 bps" in shown, shown
    assert AuditEvent.objects.get(action="fees synced").user == administrator
