"""factory-boy factories for the models under test."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from markets.models import Exchange, Listing, Market


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def save_password(self, create, extracted, **kwargs):
        if create:
            self.save()


class ExchangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exchange
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"venue{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    ws_url = factory.LazyAttribute(lambda o: f"ws://127.0.0.1:1/{o.slug}")
    taker_fee_bps = Decimal("10")


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ["symbol"]

    symbol = "BTC-USD"
    base = factory.LazyAttribute(lambda o: o.symbol.split("-")[0])
    quote = factory.LazyAttribute(lambda o: o.symbol.split("-")[1])


class ListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Listing

    exchange = factory.SubFactory(ExchangeFactory)
    market = factory.SubFactory(MarketFactory)
    venue_symbol = factory.LazyAttribute(lambda o: o.market.symbol)
    tick_size = Decimal("0.01")
    lot_size = Decimal("0.0001")


# Execution: opportunities, risk profiles and accounts for the trading and portfolio tests.
from django.utils import timezone  # noqa: E402

from portfolio.models import Account  # noqa: E402
from risk.models import RiskProfile  # noqa: E402
from trading.models import Opportunity  # noqa: E402


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        django_get_or_create = ["exchange", "mode"]

    exchange = factory.SubFactory(ExchangeFactory)
    mode = "paper"


class RiskProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskProfile
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"profile{n}")
    mode = "paper"
    is_active = True
    auto_execute = True
    max_notional = Decimal(100_000)
    max_hedge_slippage_bps = Decimal(50)


class OpportunityFactory(factory.django.DjangoModelFactory):
    """Buy 1 BTC at 100 on `buy_exchange`, sell at 102 on `sell_exchange` (fees 10 bps each)."""

    class Meta:
        model = Opportunity

    market = factory.SubFactory(MarketFactory)
    buy_exchange = factory.SubFactory(ExchangeFactory)
    sell_exchange = factory.SubFactory(ExchangeFactory)
    opened_at = factory.LazyFunction(timezone.now)
    detected_at = factory.LazyFunction(timezone.now)
    size = Decimal(1)
    buy_vwap = Decimal(100)
    sell_vwap = Decimal(102)
    gross_profit = Decimal(2)
    fees = Decimal("0.202")
    net_profit = Decimal("1.798")
    net_bps = Decimal("179.8")
    peak_net_profit = Decimal("1.798")
    peak_net_bps = Decimal("179.8")


def publish_test_book(venue: str, market: str, *, bids: list, asks: list, **stamps) -> None:
    """Publish a fresh, valid book for (venue, market) as the engine would."""
    import time

    from markets.bookcache import publish_book

    now = time.time()
    book = {"venue": venue, "market": market, "bids": bids, "asks": asks, "sequence": 1}
    publish_book({**book, "exchange_ts": now, "received_ts": now, "valid": True, **stamps})


def paper_desk(*, buy_funding: dict | None = None, sell_funding: dict | None = None):
    """Two venues listing BTC-USD (taker 10 and 20 bps), funded paper accounts, an active paper
    profile and an opportunity to buy 1 BTC at 100 on `buyv` and sell at 102 on `sellv`."""
    from portfolio.services import open_account

    market = MarketFactory(symbol="BTC-USD")
    buy = ExchangeFactory(slug="buyv", taker_fee_bps=Decimal(10))
    sell = ExchangeFactory(slug="sellv", taker_fee_bps=Decimal(20))
    for exchange in (buy, sell):
        ListingFactory(exchange=exchange, market=market)
    open_account(exchange=buy, mode="paper", funding=buy_funding or {"USD": Decimal(1000)})
    open_account(exchange=sell, mode="paper", funding=sell_funding or {"BTC": Decimal(5)})
    profile = RiskProfileFactory(name="paper test")
    profile.allowed_exchanges.set([buy, sell])
    profile.allowed_markets.set([market])
    return OpportunityFactory(market=market, buy_exchange=buy, sell_exchange=sell)
