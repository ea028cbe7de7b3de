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
