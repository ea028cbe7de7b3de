"""Numbers as people write them: every admin form and page in plain digits, never 0E-8 or 1E+2,
each at its meaning (money at its currency's places, book levels on the venue's tick and lot)."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from arbsite.roles import ADMINISTRATOR, TRADER
from markets.models import Exchange, Listing
from portfolio.services import open_account
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    OpportunityFactory,
    OrderFactory,
    RiskProfileFactory,
    TradeFactory,
    publish_test_book,
)

pytestmark = pytest.mark.django_db
D = Decimal
# How Decimal's str() writes a number it thinks small or large: 0E-8, 1E+2, 1.5E-7.
EXPONENT = re.compile(r"\dE[+-]\d")
NUMBER_INPUT = re.compile(r'<input type="number"[^>]*>')


def number_inputs(html: str) -> dict[str, tuple[str, str]]:
    """Each number input of a form by name: (value, step)."""
    found = {}
    for tag in NUMBER_INPUT.findall(html):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
        found[attrs["name"]] = (attrs.get("value", ""), attrs.get("step", ""))
    return found


@pytest.fixture
def admin_client(client, user_with_role, fresh_cache):
    user = user_with_role(ADMINISTRATOR)  # with its second factor passed
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def desk_client(client, user_with_role, fresh_cache):
    client.force_login(user_with_role(TRADER))
    return client


EXTREMES = {
    "min_profit_quote": (D(0), "0"),
    "max_notional": (D("0.00000001"), "0.00000001"),
    "max_position": (D("123456789012.5"), "123456789012.5"),
    "max_daily_loss": (D(100), "100"),
    "min_profit_bps": (D(0), "0"),
}


def test_the_risk_profile_form_shows_zero_tiny_and_large_limits_in_plain_digits(admin_client):
    profile = RiskProfileFactory(**{name: value for name, (value, _) in EXTREMES.items()})
    profile.refresh_from_db()  # as the database hands them back: 0E-8, 1E-8, ...
    assert str(profile.min_profit_quote) == "0E-8"

    url = reverse("admin:risk_riskprofile_change", args=[profile.pk])
    html = admin_client.get(url).content.decode()

    inputs = number_inputs(html)
    for name, (_, text) in EXTREMES.items():
        assert inputs[name][0] == text
    assert inputs["max_notional"][1] == "0.00000001"  # the step, which Django writes 1e-8
    assert not EXPONENT.search(html) and "1e-8" not in html


def test_a_new_risk_profile_form_shows_its_defaults_in_plain_digits(admin_client):
    html = admin_client.get(reverse("admin:risk_riskprofile_add")).content.decode()

    assert number_inputs(html)["min_profit_quote"][0] == "0"
    assert not EXPONENT.search(html)


def test_exchange_and_market_forms_show_fees_ticks_and_lots_in_plain_digits(admin_client):
    exchange = ExchangeFactory(taker_fee_bps=D(0), maker_fee_bps=D("0.001"))
    listing = ListingFactory(
        exchange=exchange, tick_size=D("0.0000000001"), lot_size=D("100000000")
    )
    exchange = Exchange.objects.get(pk=exchange.pk)
    assert str(Listing.objects.get(pk=listing.pk).tick_size) == "1E-10"

    exchange_html = admin_client.get(
        reverse("admin:markets_exchange_change", args=[exchange.pk])
    ).content.decode()
    market_html = admin_client.get(
        reverse("admin:markets_market_change", args=[listing.market.pk])
    ).content.decode()

    assert number_inputs(exchange_html)["taker_fee_bps"][0] == "0"
    assert number_inputs(exchange_html)["maker_fee_bps"][0] == "0.001"
    listing_inputs = number_inputs(market_html)
    assert listing_inputs["listings-0-tick_size"][0] == "0.0000000001"
    assert listing_inputs["listings-0-lot_size"][0] == "100000000"
    assert not EXPONENT.search(exchange_html) and not EXPONENT.search(market_html)


@pytest.fixture
def extreme_desk():
    """A market with a tiny tick, an opportunity of a round 100 (1E+2 once normalized), a trade
    with zero fees, and balances zero, tiny and large."""
    market = MarketFactory(symbol="BTC-USD")
    cheap = ExchangeFactory(slug="cheap", name="Cheap")
    dear = ExchangeFactory(slug="dear", name="Dear")
    for venue in (cheap, dear):
        ListingFactory(market=market, exchange=venue, tick_size=D("1E-8"), lot_size=D(1))
    publish_test_book(
        "cheap", "BTC-USD", bids=[(D("0.00000001"), D(100))], asks=[(D("0.00000002"), D(200))]
    )
    opportunity = OpportunityFactory(
        market=market, buy_exchange=cheap, sell_exchange=dear, size=D(100), net_profit=D(0)
    )
    trade = TradeFactory(opportunity=opportunity, requested_size=D(100), realised_net_profit=D(0))
    OrderFactory(trade=trade, amount=D(100), limit_price=D("0.00000001"), fee=D(0))
    open_account(
        exchange=cheap,
        mode="paper",
        funding={"USD": D("123456789012.5"), "BTC": D("0.00000001"), "ETH": D("0.000000001")},
    )
    return opportunity


@pytest.mark.parametrize(
    "page",
    [
        "dashboard",
        "opportunities",
        "opportunity",
        "execute",
        "trades",
        "portfolio",
        "market",
        "reports",
    ],
)
def test_no_page_writes_a_number_in_exponent_notation(desk_client, extreme_desk, page):
    urls = {
        "opportunity": reverse("opportunity_detail", args=[extreme_desk.pk]),
        "execute": reverse("execute", args=[extreme_desk.pk]),
        "market": reverse("market_detail", args=["BTC-USD"]),
    }
    html = desk_client.get(urls.get(page) or reverse(page)).content.decode()

    assert not EXPONENT.search(html), EXPONENT.search(html)


def test_pages_write_sizes_whole_money_at_its_places_and_levels_on_the_tick(
    desk_client, extreme_desk
):
    trades = desk_client.get(reverse("trades")).content.decode()
    portfolio = desk_client.get(reverse("portfolio")).content.decode()
    market = desk_client.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert ">100<" in trades  # the requested size, not 1E+2
    assert "123456789012.50" in portfolio and "0.00000001" in portfolio
    assert ">0.00000000<" in portfolio  # a billionth of an ETH, at ETH's places
    assert ">0.00000001<" in market and ">0.00000002<" in market and ">200<" in market
