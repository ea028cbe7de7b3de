"""How a simulated listing prints its prices and sizes: the venue's own decimals."""

from decimal import Decimal

from markets.simulator.specs import SimListing

LISTING = SimListing("BTCUSDT", Decimal("0.01"), Decimal("0.00001"))


def test_prices_and_sizes_print_with_the_decimals_of_the_tick_and_the_lot():
    assert (LISTING.price_text(6_000_012), LISTING.qty_text(40_000)) == ("60000.12", "0.40000")


def test_prices_and_sizes_print_with_the_decimals_asked_for():
    assert (LISTING.price_text(9950, 8), LISTING.qty_text(1, 8)) == ("99.50000000", "0.00001000")
