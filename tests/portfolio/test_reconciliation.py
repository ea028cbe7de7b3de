"""The comparison of a venue's holdings with the ledger, and how a drift is put in words."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portfolio.reconciliation import Drift, beyond, compare, drift_words

D = Decimal
amounts = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False)
holdings = st.dictionaries(st.sampled_from(["USD", "USDT", "BTC", "ETH"]), amounts, max_size=4)


def test_each_asset_either_side_holds_is_compared_by_name():
    drifts = compare({"BTC": D(2), "USD": D("10012.4")}, {"USD": D(10_000), "ETH": D(1)})

    assert drifts == [
        Drift("BTC", D(2), D(0)),
        Drift("ETH", D(0), D(1)),
        Drift("USD", D("10012.4"), D(10_000)),
    ]
    assert [d.drift for d in drifts] == [D(2), D(-1), D("12.4")]


def test_an_asset_the_ledger_books_under_another_name_counts_towards_it():
    drifts = compare({"USDT": D(600), "USD": D(400)}, {"USD": D(1000)}, {"USDT": "USD"})

    assert drifts == [Drift("USD", D(1000), D(1000))]


@given(holdings)
def test_a_venue_that_holds_what_the_ledger_says_drifts_nowhere(held):
    assert all(d.drift == 0 for d in compare(held, dict(held)))


@given(holdings, holdings)
def test_every_drift_is_the_venue_less_the_ledger_and_none_is_lost(venue, ledger):
    drifts = compare(venue, ledger)

    assert sum((d.drift for d in drifts), D(0)) == sum(venue.values(), D(0)) - sum(
        ledger.values(), D(0)
    )


def test_only_drifts_past_their_assets_tolerance_count():
    drifts = [Drift("USD", D("100.005"), D(100)), Drift("BTC", D("1.00000001"), D(1))]

    past = beyond(drifts, lambda asset: {"USD": D("0.01")}.get(asset, D(0)))

    assert [d.asset for d in past] == ["BTC"]


def test_a_drift_in_words_carries_the_figures_without_the_columns_zeros():
    drift = Drift("USD", D("10012.400000000000"), D("10000.000000000000"))

    assert drift_words("kraken", drift) == "kraken USD: venue 10,012.4, ledger 10,000, drift +12.4"
    assert drift_words("kraken", Drift("BTC", D("0.5"), D(1))).endswith("drift -0.5")
