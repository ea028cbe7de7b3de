"""Risk reads: the active profile's limits as the plain values the checks take."""

from decimal import Decimal

import pytest

from portfolio.models import Mode
from risk.checks import Limits
from risk.models import RiskProfile
from risk.selectors import limits_of, load_limits
from tests.factories import ExchangeFactory, MarketFactory, RiskProfileFactory

pytestmark = pytest.mark.django_db


def test_a_profiles_limits_name_its_venues_and_markets_by_slug_and_symbol():
    profile = RiskProfileFactory(
        name="paper desk",
        auto_execute=False,
        min_profit_bps=Decimal(7),
        max_notional=Decimal(2500),
        max_consecutive_failures=4,
    )
    profile.allowed_exchanges.set(
        [ExchangeFactory(slug="kraken"), ExchangeFactory(slug="coinbase")]
    )
    profile.allowed_markets.set([MarketFactory(symbol="BTC-USD")])

    limits = limits_of(profile)

    assert limits == Limits(
        mode=Mode.PAPER,
        auto_execute=False,
        min_profit_bps=Decimal(7),
        min_profit_quote=profile.min_profit_quote,
        max_notional=Decimal(2500),
        max_position=profile.max_position,
        max_daily_loss=profile.max_daily_loss,
        max_trades_per_minute=profile.max_trades_per_minute,
        max_book_age_ms=profile.max_book_age_ms,
        max_open_imbalance=profile.max_open_imbalance,
        max_consecutive_failures=4,
        allowed_venues=frozenset({"kraken", "coinbase"}),
        allowed_markets=frozenset({"BTC-USD"}),
    )


def test_the_limits_loaded_are_the_active_profiles_or_none():
    RiskProfileFactory(name="paper desk", max_notional=Decimal(2500))
    RiskProfileFactory(name="old paper", is_active=False, max_notional=Decimal(1))

    assert load_limits(Mode.PAPER).max_notional == Decimal(2500)
    assert load_limits(Mode.LIVE) is None


def test_the_active_profile_of_each_mode_comes_in_one_query(django_assert_num_queries):
    paper = RiskProfileFactory(name="paper on", mode=Mode.PAPER, is_active=True)
    RiskProfileFactory(name="paper off", mode=Mode.PAPER, is_active=False)
    RiskProfileFactory(name="live off", mode=Mode.LIVE, is_active=False)

    with django_assert_num_queries(1):
        assert RiskProfile.objects.actives() == {Mode.PAPER: paper}

    live = RiskProfileFactory(name="live on", mode=Mode.LIVE, is_active=True)
    assert RiskProfile.objects.actives() == {Mode.PAPER: paper, Mode.LIVE: live}
    assert RiskProfile.objects.actives()[Mode.LIVE] == RiskProfile.objects.active(Mode.LIVE)
