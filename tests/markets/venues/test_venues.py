"""Which venues the desk can trade live: the orders module each one trades through, or why not."""

import pytest
from cryptography.fernet import Fernet

from markets.models import ExchangeCredential
from markets.venues.binance.orders import LiveVenue
from markets.venues.live import NotTradable, live_venue
from tests.factories import ExchangeFactory


@pytest.mark.django_db
def test_a_venue_with_an_orders_module_trades_through_it_with_its_credential(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    binance = ExchangeFactory(slug="binance", rest_url="http://127.0.0.1:1/binance")
    credential = ExchangeCredential(exchange=binance)
    credential.set_keys(api_key="the-key", secret="the-secret")
    credential.save()

    venue = live_venue(binance)

    assert isinstance(venue, LiveVenue)
    assert (venue.api_key, venue.secret, venue.api_url) == (
        "the-key",
        "the-secret",
        "http://127.0.0.1:1/binance",
    )


@pytest.mark.django_db
def test_a_venue_without_an_orders_module_is_not_tradable_and_says_so():
    okx = ExchangeFactory(slug="okx")

    with pytest.raises(NotTradable) as refused:
        live_venue(okx)

    assert str(refused.value) == (
        "okx has no orders module: the desk can watch it but not trade it live"
    )
    assert isinstance(refused.value, ValueError)
