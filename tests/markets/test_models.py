"""Markets and listings: which symbols the models accept."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import resolve, reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from markets.models import Listing, Market

MARKET_SYMBOL = Market._meta.get_field("symbol")
VENUE_SYMBOL = Listing._meta.get_field("venue_symbol")


@pytest.mark.parametrize("symbol", ["BTC-USD", "ETH-USDT", "1INCH-USD", "USDC-EUR"])
def test_a_canonical_market_symbol_is_accepted(symbol):
    assert MARKET_SYMBOL.clean(symbol, None) == symbol


@pytest.mark.parametrize(
    "symbol",
    ["BTC/EUR", "btc-usd", "BTCUSD", "BTC-USD-PERP", " BTC-USD", "BTC-USD\n", "BTC-\x00USD", ""],
)
def test_a_market_symbol_that_is_not_base_dash_quote_in_capitals_is_refused(symbol):
    with pytest.raises(ValidationError):
        MARKET_SYMBOL.clean(symbol, None)


@pytest.mark.parametrize(
    "symbol", ["BTC/USD", "BTCUSDT", "BTC-USD", "btcusd", "PI_XBTUSD", "BTC/USDT:USDT"]
)
def test_a_venue_symbol_as_venues_write_them_is_accepted(symbol):
    assert VENUE_SYMBOL.clean(symbol, None) == symbol


@pytest.mark.parametrize(
    "symbol", ["BTC USD", "BTC\x00USD", "/BTC", "<b>BTC</b>", "BTC;USD", "X" * 31, ""]
)
def test_a_venue_symbol_with_odd_characters_or_too_long_is_refused(symbol):
    with pytest.raises(ValidationError):
        VENUE_SYMBOL.clean(symbol, None)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.from_regex(r"\A[A-Z0-9/]{1,12}-[A-Z0-9]{1,12}\Z"),
    )
)
def test_every_accepted_market_symbol_names_its_own_page(symbol):
    try:
        MARKET_SYMBOL.clean(symbol, None)
    except ValidationError:
        return

    match = resolve(reverse("market_detail", args=[symbol]))

    assert match.kwargs == {"symbol": symbol}
