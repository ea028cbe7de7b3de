"""The portfolio page's inventory chart: each venue's holding of the chosen asset over the
chosen period in the chosen mode, as exact text for the chart and a table behind <details>."""

import json
import re
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from portfolio.services import adjust, open_account
from tests.factories import ExchangeFactory, MarketFactory, RiskProfileFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def holdings(db):
    """BTC and USD on Kraken and Bitstamp (paper), ETH on Kraken (live); BTC moves on Kraken."""
    MarketFactory(symbol="BTC-USD")
    kraken = ExchangeFactory(slug="kraken", name="Kraken")
    bitstamp = ExchangeFactory(slug="bitstamp", name="Bitstamp")
    paper = open_account(exchange=kraken, mode="paper", funding={"USD": D(1000), "BTC": D(2)})
    open_account(exchange=bitstamp, mode="paper", funding={"BTC": D("0.5")})
    open_account(exchange=kraken, mode="live", funding={"ETH": D(3)})
    adjust(account=paper, asset="BTC", amount=D("-0.25"), reason="moved to cold storage")


def inventory_data(html: str) -> dict:
    found = re.search(r'<div id="inventory-chart" data-chart="([^"]*)"', html)
    return json.loads(unescape(found.group(1)))


def test_the_chart_shows_the_first_base_asset_per_venue_in_the_desks_mode(viewer, holdings):
    html = viewer.get(reverse("portfolio")).content.decode()

    data = inventory_data(html)
    assert data["asset"] == "BTC"
    assert [v["name"] for v in data["venues"]] == ["Bitstamp", "Kraken"]
    # Funded and adjusted within the last 15 minutes: each series ends at today's balance.
    assert data["amounts"]["kraken"][-1] == "1.750000000000"
    assert data["amounts"]["bitstamp"][-1] == "0.500000000000"
    assert len(data["times"]) == 97  # 24 h every 15 minutes, and now
    assert "now: Bitstamp 0.50000000, Kraken 1.75000000." in html
    # Each asset the mode holds, once.
    assert re.findall(r'<option value="(\w+)"[^>]*>\1</option>', html) == ["BTC", "USD"]


def test_an_asset_and_mode_chosen_are_charted(viewer, holdings):
    html = viewer.get(reverse("portfolio"), {"asset": "ETH", "mode": "live", "period": "1h"})

    data = inventory_data(html.content.decode())
    assert data["asset"] == "ETH"
    # Funded just now: nothing until the last point, every minute of the hour.
    assert data["amounts"] == {"kraken": ["0.000000000000"] * 60 + ["3.000000000000"]}


def test_the_live_mode_is_the_default_while_a_live_profile_is_active(viewer, holdings):
    RiskProfileFactory(name="live", mode="live")

    data = inventory_data(viewer.get(reverse("portfolio")).content.decode())

    assert data["asset"] == "ETH"


def test_an_unknown_asset_mode_or_period_falls_back_to_the_defaults(viewer, holdings):
    html = viewer.get(reverse("portfolio"), {"asset": "DOGE", "mode": "x", "period": "1y"})

    data = inventory_data(html.content.decode())
    assert data["asset"] == "BTC" and len(data["times"]) == 97


def test_the_form_swaps_the_chart_section_alone(viewer, holdings):
    response = viewer.get(
        reverse("portfolio"), {"asset": "USD", "period": "7d"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="inventory"')
    held = inventory_data(html)["amounts"]["kraken"]
    assert held == ["0.000000000000"] * 84 + ["1000.000000000000"]  # every 2 h for 7 days
    assert "Realised PnL" not in html
    # The figures in words behind <details>: the last row is now, a column per venue.
    assert re.findall(r'<td class="num">([^<]*)</td>', html)[-1] == "1000.00"


def test_no_holdings_means_no_chart_and_says_so(viewer):
    html = viewer.get(reverse("portfolio")).content.decode()

    assert 'id="inventory-chart"' not in html
    assert "No paper account holds anything yet" in html


@pytest.mark.parametrize(
    ("page", "args", "params"),
    [
        ("portfolio", [], {"asset": "BTC", "mode": "live", "period": "7d"}),
        ("market_detail", ["BTC-USD"], {}),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_the_charts_are_refused_without_the_view_permission(
    client, user_with_role, holdings, page, args, params, htmx
):
    headers = {"HX-Request": "true"} if htmx else {}
    url = reverse(page, args=args)

    anonymous = client.get(url, params, headers=headers)
    client.force_login(user_with_role(None))
    refused = client.get(url, params, headers=headers)

    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert refused.status_code == 403
    assert "inventory-chart" not in refused.content.decode()
    assert "price-data" not in refused.content.decode()
