"""The money words: scale, rounding, plain digits, fees, bps and UTC days."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.money import (
    BPS,
    amount_text,
    day_start,
    fixed,
    money,
    net_bps,
    on_grid,
    plain,
    step_places,
    taker_fee,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Decimal("0E-12")),
        (Decimal("1.0000000000005"), Decimal("1.000000000000")),  # half-even: down to even
        (Decimal("1.0000000000015"), Decimal("1.000000000002")),
        (0.1, Decimal("0.100000000000")),  # a float aggregate by its repr, not its binary value
        (3, Decimal("3.000000000000")),
        ("2.5", Decimal("2.500000000000")),
    ],
)
def test_money_quantizes_to_the_stored_scale_half_even(value, expected):
    assert money(value) == expected
    assert money(value).as_tuple().exponent == -12


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("2E+2"), "200"),
        (Decimal("1.50"), "1.5"),
        (Decimal(0), "0"),
        (Decimal("0E-8"), "0"),
        (Decimal("-0E-12"), "0"),
        (Decimal("1E-12"), "0.000000000001"),
        (Decimal("1.23E+20"), "123000000000000000000"),
    ],
)
def test_plain_writes_digits_without_exponent_or_trailing_zeros(value, text):
    assert plain(value) == text


def test_taker_fee_is_notional_times_bps_at_money_scale():
    assert taker_fee(Decimal("60000"), Decimal("10")) == Decimal("60.000000000000")
    assert taker_fee(Decimal("1"), Decimal("0.3")) == Decimal("0.000030000000")


def test_net_bps_pays_both_fees_over_the_buy_notional():
    # Buy at 100 with 10 bps, sell at 101 with 10 bps: 101 * 0.999 - 100 * 1.001 = 0.799.
    assert net_bps(Decimal(100), Decimal(101), Decimal("0.001"), Decimal("0.001")) == Decimal(
        "79.9"
    )


@given(
    ask=st.decimals(min_value="0.01", max_value="100000", places=2),
    bid=st.decimals(min_value="0.01", max_value="100000", places=2),
)
def test_net_bps_without_fees_is_the_raw_spread_over_the_ask(ask, bid):
    assert net_bps(ask, bid, Decimal(0), Decimal(0)) == (bid - ask) / ask * BPS


def test_day_start_is_midnight_utc():
    assert day_start(date(2026, 12, 1)) == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Decimal("0E-12"), 2, "0.00"),
        (Decimal("-0.001"), 2, "0.00"),  # a loss too small to show is not "-0.00"
        (Decimal("1E-12"), 8, "0.00000000"),
        (Decimal("0.125"), 2, "0.12"),  # half-even
        (Decimal("1E+20"), 2, "100000000000000000000.00"),
        (Decimal("-1234.5"), 0, "-1234"),
    ],
)
def test_fixed_writes_exactly_the_places_asked_in_plain_digits(value, places, text):
    assert fixed(value, places) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("0E-12"), "USD", "0.00"),
        (Decimal("1234567.891"), "usdt", "1234567.89"),
        (Decimal("1.5"), "BTC", "1.50000000"),
        (Decimal("1E-8"), "ETH", "0.00000001"),
    ],
)
def test_an_amount_is_written_at_its_currencys_places(value, currency, text):
    assert amount_text(value, currency) == text


@pytest.mark.parametrize(
    ("step", "places"),
    [(Decimal("0.01"), 2), (Decimal("0.0100000000"), 2), (Decimal(1), 0), (Decimal("5E+1"), 0)],
)
def test_step_places_counts_the_decimals_of_a_tick_or_lot(step, places):
    assert step_places(step) == places


def test_on_grid_writes_a_price_on_the_tick_and_leaves_one_off_it_whole():
    assert str(on_grid(Decimal("60078.01000000"), Decimal("0.01"))) == "60078.01"
    assert str(on_grid(Decimal("60078.10000000"), Decimal("0.01"))) == "60078.10"
    assert on_grid(Decimal("60078.015"), Decimal("0.01")) == Decimal("60078.015")
    assert on_grid(None, Decimal("0.01")) is None


@given(st.decimals(allow_nan=False, allow_infinity=False), st.integers(0, 12))
def test_fixed_never_writes_an_exponent_and_rounds_by_at_most_half_a_place(value, places):
    text = fixed(value, places)

    assert "E" not in text and "e" not in text
    assert len(text.partition(".")[2]) == places
    assert abs(Decimal(text) - value) <= Decimal(1).scaleb(-places) / 2
