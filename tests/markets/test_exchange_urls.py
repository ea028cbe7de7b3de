"""A venue's URLs take only its own protocols, in the admin and in the environment's overrides."""

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from arbsite.roles import ADMINISTRATOR
from markets.models import Exchange

pytestmark = pytest.mark.django_db

GOOD_WS = ["wss://ws.kraken.com/v2", "ws://127.0.0.1:8765/coinbase", "wss://stream:9443/ws?x=1"]
BAD_WS = ["javascript:alert(1)", "file:///etc/passwd", "https://ws.kraken.com", "ws://", "ws:// x"]
GOOD_REST = ["https://api.binance.com", "http://127.0.0.1:8765/binance", ""]
BAD_REST = ["javascript:alert(1)", "file:///etc/passwd", "wss://api.binance.com", "https://"]


def exchange(**urls) -> Exchange:
    return Exchange(slug="kraken", name="Kraken", taker_fee_bps=26, **urls)


@pytest.mark.parametrize("url", GOOD_WS)
def test_exchange_accepts_a_ws_or_wss_websocket_url(url):
    exchange(ws_url=url).full_clean()


@pytest.mark.parametrize("url", BAD_WS)
def test_exchange_refuses_a_websocket_url_of_another_scheme(url):
    with pytest.raises(ValidationError) as caught:
        exchange(ws_url=url).full_clean()

    assert set(caught.value.message_dict) == {"ws_url"}


@pytest.mark.parametrize("url", GOOD_REST)
def test_exchange_accepts_an_http_or_https_rest_url_or_none(url):
    exchange(ws_url=GOOD_WS[0], rest_url=url).full_clean()


@pytest.mark.parametrize("url", BAD_REST)
def test_exchange_refuses_a_rest_url_of_another_scheme(url):
    with pytest.raises(ValidationError) as caught:
        exchange(ws_url=GOOD_WS[0], rest_url=url).full_clean()

    assert set(caught.value.message_dict) == {"rest_url"}


def test_admin_form_shows_the_url_errors_and_saves_nothing(client, user_with_role):
    administrator = user_with_role(ADMINISTRATOR)
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)
    form = {
        "slug": "evil",
        "name": "Evil",
        "ws_url": "javascript:alert(1)",
        "rest_url": "file:///etc/passwd",
        "taker_fee_bps": "10",
        "maker_fee_bps": "0",
        "enabled": "on",
    }

    response = client.post("/admin/markets/exchange/add/", form)

    html = response.content.decode()
    assert response.status_code == 200
    assert "A WebSocket URL is ws:// or wss://" in html
    assert "A REST base URL is http:// or https://" in html
    assert not Exchange.objects.filter(slug="evil").exists()


@pytest.mark.parametrize(
    ("variable", "url", "read"),
    [
        ("ARB_KRAKEN_WS_URL", "file:///etc/passwd", Exchange.effective_ws_url),
        ("ARB_KRAKEN_REST_URL", "javascript:alert(1)", Exchange.effective_rest_url),
    ],
)
def test_url_override_of_another_scheme_is_refused_naming_the_variable(
    monkeypatch, variable, url, read
):
    monkeypatch.setenv(variable, url)

    with pytest.raises(ImproperlyConfigured, match=variable):
        read(exchange(ws_url=GOOD_WS[0]))


def test_url_overrides_of_the_right_scheme_replace_the_rows_urls(monkeypatch):
    monkeypatch.setenv("ARB_KRAKEN_WS_URL", "wss://ws.example.com/v2")
    monkeypatch.setenv("ARB_KRAKEN_REST_URL", "https://api.example.com")
    venue = exchange(ws_url=GOOD_WS[0], rest_url="https://api.kraken.com")

    assert venue.effective_ws_url() == "wss://ws.example.com/v2"
    assert venue.effective_rest_url() == "https://api.example.com"
