"""The money words: scale, rounding, plain digits, fees, bps and UTC days."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.money import BPS, day_start, money, net_bps, plain, taker_fee


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
    ("value", "text"), [(Decimal("2E+2"), "200"), (Decimal("1.50"), "1.5"), (Decimal(0), "0")]
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
