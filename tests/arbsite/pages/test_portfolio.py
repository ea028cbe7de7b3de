"""The portfolio page: balances per venue and asset, their value at the mid, and realised PnL."""

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.cache import caches
from django.urls import reverse
from django.utils import timezone

from arbsite import live
from arbsite.access import VIEW
from arbsite.pages.fragments import TOPICS
from arbsite.roles import ADMINISTRATOR
from markets import notices
from markets.models import ExchangeCredential
from portfolio.models import Reconciliation
from portfolio.services import open_account
from tests.factories import ExchangeFactory, MarketFactory, OpportunityFactory, publish_test_book
from trading.models import Trade

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def no_books():
    caches["books"].clear()


@pytest.fixture
def accounts():
    MarketFactory(symbol="BTC-USD")
    kraken = ExchangeFactory(slug="kraken", name="Kraken")
    open_account(exchange=kraken, mode="paper", funding={"USD": D(1000), "BTC": D(2)})
    return kraken


def test_portfolio_shows_each_balance_and_its_value_at_the_mid(viewer, accounts):
    publish_test_book("kraken", "BTC-USD", bids=[(D(99), D(1))], asks=[(D(101), D(1))])

    html = viewer.get(reverse("portfolio")).content.decode()

    assert "Kraken" in html
    assert ">2.00000000<" in html and ">1000.00<" in html  # each at its currency's places
    assert "200.00 USD" in html  # 2 BTC at the mid of 100
    assert "total 1200.00 USD" in html


def test_portfolio_says_when_an_asset_has_no_price(viewer, accounts):
    html = viewer.get(reverse("portfolio")).content.decode()

    assert "no price" in html
    assert "some assets have no fresh price" in html


def test_portfolio_shows_todays_realised_pnl_per_mode(viewer):
    now = timezone.now()
    Trade.objects.create(
        opportunity=OpportunityFactory(),
        mode="paper",
        state="closed",
        requested_size=D(1),
        expected_net_profit=D(2),
        realised_net_profit=D("1.75"),
        created_at=now,
        closed_at=now,
        state_changed_at=now,
    )

    html = viewer.get(reverse("portfolio")).content.decode()

    assert "1.75 USD" in html


def test_the_balances_push_is_the_same_partial_the_page_renders(viewer, accounts):
    page = viewer.get(reverse("portfolio")).content.decode()

    [(kind, balances)] = [
        (k, f) for k, f in TOPICS["portfolio"] if f.template.endswith("#balances")
    ]
    pushed = live.render(balances, "", VIEW, 0.0)

    assert kind == notices.PORTFOLIO
    section = pushed.split('data-published="', 1)[1].split(">", 1)[1]
    assert section in page


@pytest.fixture
def reconciled(settings):
    """A live Kraken account with a key, last reconciled with a USD drift of +12.4."""
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    kraken = ExchangeFactory(slug="kraken", name="Kraken")
    credential = ExchangeCredential(exchange=kraken)
    credential.set_keys(api_key="k", secret="s")
    credential.save()
    account = open_account(exchange=kraken, mode="live", funding={"USD": D(10_000)})
    lines = [
        {"asset": "BTC", "venue": "1", "ledger": "1"},
        {"asset": "USD", "venue": "10012.4", "ledger": "10000"},
    ]
    external = [
        {
            "id": "OXT-1",
            "client_order_id": "",
            "symbol": "XBTUSD",
            "side": "sell",
            "amount": "0.5",
            "price": "150",
        }
    ]
    Reconciliation.objects.create(account=account, lines=lines, external_orders=external)
    return account


def test_the_page_shows_each_live_asset_at_the_venue_in_the_ledger_and_its_drift(
    viewer, reconciled
):
    html = viewer.get(reverse("portfolio")).content.decode()

    section = html.split('id="reconciliation"', 1)[1].split("</section>", 1)[0]
    assert '<tr class="bad"><th scope="row">USD</th>' in section
    assert ">10012.4<" in section and ">10000<" in section and "12.4 (past tolerance)" in section
    assert '<tr><th scope="row">BTC</th>' in section
    assert "orders resting there that no trade of the desk" in section and "OXT-1" in section
    assert "Book an adjustment" not in html  # a Viewer may not


def test_an_administrator_is_offered_the_adjustment(client, user_with_role, reconciled):
    client.force_login(user_with_role(ADMINISTRATOR))

    html = client.get(reverse("portfolio")).content.decode()

    assert reverse("portfolio_adjust") in html


def test_the_reconciliation_push_is_the_same_partial_the_page_renders(viewer, reconciled):
    page = viewer.get(reverse("portfolio")).content.decode()
    [(kind, fragment)] = [
        (k, f) for k, f in TOPICS["portfolio"] if f.template.endswith("#reconciliation")
    ]

    pushed = live.render(fragment, "", VIEW, 0.0)

    assert kind == notices.PORTFOLIO
    assert pushed.split('data-published="', 1)[1].split(">", 1)[1] in page
