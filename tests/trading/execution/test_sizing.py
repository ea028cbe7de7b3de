"""Sizing and tick maths: whole lots within every bound, limits on the tick that never worsen."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.detector import common_lot
from trading.execution.sizing import (
    UNLISTED_LOT,
    Grid,
    leg_limits,
    on_tick,
    slipped,
    trade_size,
    under_minimum,
    whole_lots,
)

D = Decimal


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals from `low` to `high` with up to `places` decimal places, as venues quote them."""
    return st.builds(
        lambda units, scale: D(units).scaleb(-scale),
        st.integers(low * 10**places, high * 10**places),
        st.just(places),
    ).flatmap(lambda d: st.sampled_from([d, d.normalize()]))


prices = decimals(0, 100_000, 8).filter(lambda p: p > 0)
amounts = decimals(0, 1_000, 8)
funds = decimals(0, 10_000_000, 8)
fees = st.sampled_from([D(0), D("0.0001"), D("0.001"), D("0.0026"), D("0.006")])
steps = st.builds(
    lambda digit, exponent: D(digit).scaleb(exponent),
    st.integers(1, 9),
    st.integers(-8, 0),
)
lots = st.one_of(st.none(), steps)
sides = st.sampled_from(["buy", "sell"])


def bounds(**kwargs) -> dict:
    return {
        "size": kwargs["size"],
        "notional": kwargs["max_notional"] / kwargs["buy_limit"],
        "quote": kwargs["quote_available"] / (kwargs["buy_limit"] * (1 + kwargs["buy_fee"])),
        "base": kwargs["base_available"],
    }


sizings = st.fixed_dictionaries(
    {
        "size": amounts,
        "max_notional": funds,
        "buy_limit": prices,
        "buy_fee": fees,
        "quote_available": funds,
        "base_available": amounts,
        "buy_lot": lots,
        "sell_lot": lots,
    }
)


def lot_of(sizing: dict) -> Decimal:
    buy, sell = sizing["buy_lot"], sizing["sell_lot"]
    return common_lot(UNLISTED_LOT if buy is None else buy, UNLISTED_LOT if sell is None else sell)


@given(sizings)
def test_a_size_is_whole_lots_both_venues_accept_and_never_exceeds_a_bound(sizing):
    size = trade_size(**sizing)

    assert size >= 0
    assert size % lot_of(sizing) == 0
    buy_limit = sizing["buy_limit"]
    assert size <= sizing["size"]
    assert size * buy_limit <= sizing["max_notional"]
    assert size * buy_limit * (1 + sizing["buy_fee"]) <= sizing["quote_available"]
    assert size <= sizing["base_available"]


@given(sizings)
def test_a_size_is_the_largest_whole_lot_within_the_bounds(sizing):
    size = trade_size(**sizing)

    lot = lot_of(sizing)
    assert size + lot > min(bounds(**sizing).values())


def test_a_size_is_cut_to_the_quote_balance_including_the_fee():
    size = trade_size(
        size=D(1),
        max_notional=D(100_000),
        buy_limit=D(100),
        buy_fee=D("0.001"),
        quote_available=D(50),
        base_available=D(5),
        buy_lot=D("0.0001"),
        sell_lot=D("0.0001"),
    )

    assert size == D("0.4995")  # 50 / (100 * 1.001) = 0.49950..., in lots of 0.0001


def test_a_size_is_in_the_coarser_lot_when_the_venues_step_differently():
    size = trade_size(
        size=D("0.5"),
        max_notional=D(100_000),
        buy_limit=D(100),
        buy_fee=D(0),
        quote_available=D(1000),
        base_available=D(5),
        buy_lot=D("0.3"),
        sell_lot=D("0.2"),
    )

    assert size == D(0)  # 0.6 is the finest size both take: none fits in 0.5


@pytest.mark.parametrize(
    ("price", "tick", "side", "limit"),
    [
        ("99.800000000001", "0.01", "buy", "99.80"),  # a buy never pays above the price given
        ("102.166666666667", "0.01", "sell", "102.17"),  # a sell never sells below it
        ("100.25", "0.5", "buy", "100.0"),
        ("100.25", "0.5", "sell", "100.5"),
        ("100.50", "0.5", "buy", "100.5"),  # on the grid already: unchanged
        ("0.123456789", None, "buy", "0.123456789"),  # no listing: as given
    ],
)
def test_limit_prices_are_put_on_the_venues_tick(price, tick, side, limit):
    assert on_tick(D(price), None if tick is None else D(tick), side) == D(limit)


@given(decimals(0, 100_000, 12).filter(lambda p: p > 0), steps, sides)
def test_a_limit_on_the_tick_is_within_one_tick_and_never_a_worse_price(price, tick, side):
    limit = on_tick(price, tick, side)

    assert limit % tick == 0
    if side == "buy":
        assert price - tick < limit <= price
    else:
        assert price <= limit < price + tick


@given(st.integers(1, 10**9), steps, sides)
def test_a_price_already_on_the_tick_is_unchanged(ticks, tick, side):
    assert on_tick(ticks * tick, tick, side) == ticks * tick


def test_the_legs_limits_are_the_walked_to_prices_or_else_the_vwaps():
    walked = leg_limits(
        buy_vwap=D("99.8"), sell_vwap=D("102.15"), buy_limit=D(100), sell_limit=D(102)
    )
    older = leg_limits(buy_vwap=D("99.8"), sell_vwap=D("102.15"), buy_limit=None, sell_limit=None)

    assert walked == (D(100), D(102))
    assert older == (D("99.8"), D("102.15"))


@given(amounts, lots)
def test_an_amount_is_cut_to_whole_lots_and_loses_less_than_one(amount, lot):
    cut = whole_lots(amount, lot)

    if lot is None:
        assert cut == amount
    else:
        assert cut % lot == 0 and amount - lot < cut <= amount


def test_a_hedge_may_pay_its_slippage_more_on_a_buy_and_accept_it_less_on_a_sell():
    assert slipped(D(102), "sell", D(50)) == D("101.49")
    assert slipped(D(100), "buy", D(50)) == D("100.5")


def test_an_order_under_the_venues_minimum_value_says_why_and_one_at_it_passes():
    grid = Grid(tick=D("0.01"), lot=D("0.0001"), min_notional=D(5))

    reason = under_minimum(
        venue="binance", grid=grid, price=D(100), amount=D("0.04"), base="BTC", quote="USDT"
    )
    at_minimum = under_minimum(
        venue="binance", grid=grid, price=D(100), amount=D("0.05"), base="BTC", quote="USDT"
    )

    assert reason == ("0.04 BTC at 100 is worth 4 USDT, under binance's minimum order value of 5")
    assert at_minimum == ""
