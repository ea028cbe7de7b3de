"""Portfolio reads: balances per venue, and exposure at the mid with the imbalances passed in."""

from decimal import Decimal

import pytest

from portfolio.selectors import ExposureRow, balances_by_venue, exposure
from portfolio.services import open_account
from tests.factories import ExchangeFactory, MarketFactory, publish_test_book

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(fresh_cache):
    """kraken holds 2 BTC and 500 USD on paper, coinbase 1 BTC live; BTC-USD is the market."""
    MarketFactory(symbol="BTC-USD")
    kraken, coinbase = ExchangeFactory(slug="kraken"), ExchangeFactory(slug="coinbase")
    open_account(exchange=kraken, mode="paper", funding={"BTC": D(2), "USD": D(500)})
    open_account(exchange=coinbase, mode="live", funding={"BTC": D(1)})


def test_balances_are_listed_per_venue_and_asset_in_the_mode(accounts):
    assert balances_by_venue(mode="paper") == {"kraken": {"BTC": D(2), "USD": D(500)}}
    assert balances_by_venue(mode="live") == {"coinbase": {"BTC": D(1)}}


def test_exposure_values_a_base_at_the_mid_and_a_quote_at_one(accounts):
    publish_test_book("kraken", "BTC-USD", bids=[(D(99), D(1))], asks=[(D(101), D(1))])

    rows = exposure(mode="paper", imbalances={})

    assert rows == [
        ExposureRow("kraken", "BTC", D(2), D(0), "USD", D(100), D(200)),
        ExposureRow("kraken", "USD", D(500), D(0), "USD", D(1), D(500)),
    ]


def test_an_asset_without_a_fresh_book_has_no_value(accounts):
    [row] = exposure(mode="live", imbalances={})

    assert (row.venue, row.asset, row.mid, row.value) == ("coinbase", "BTC", None, None)


def test_an_imbalance_passed_in_is_shown_even_where_nothing_is_held(accounts):
    imbalances = {("kraken", "BTC"): D("0.7"), ("bitstamp", "BTC"): D("-0.7")}

    rows = {(r.venue, r.asset): r for r in exposure(mode="paper", imbalances=imbalances)}

    assert rows["kraken", "BTC"].imbalance == D("0.7")
    assert (rows["bitstamp", "BTC"].amount, rows["bitstamp", "BTC"].imbalance) == (D(0), D("-0.7"))
