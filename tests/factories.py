"""factory-boy factories for the models under test."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

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


def desk_user_without_trades():
    """A user whose role shows the desk but not its trades (view_desk only): every desk role
    holds trading.view_trade, so only a user granted the desk alone is one."""
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_desk"))
    return user


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
    buy_limit = Decimal(100)
    sell_limit = Decimal(102)
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


# Reports: settled trades with their orders (legs, hedges, unwinds) and fills.
from trading.models import Fill, Order, Trade  # noqa: E402


class TradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trade

    opportunity = factory.SubFactory(OpportunityFactory)
    mode = "paper"
    state = Trade.State.CLOSED
    requested_size = Decimal(1)
    expected_net_profit = Decimal("1.798")
    realised_net_profit = Decimal("1.798")
    created_at = factory.LazyFunction(timezone.now)
    closed_at = factory.LazyAttribute(lambda o: o.created_at)
    state_changed_at = factory.LazyAttribute(lambda o: o.created_at)


class OrderFactory(factory.django.DjangoModelFactory):
    """A leg that filled completely at its limit; pass filled_amount, fee etc. to vary it."""

    class Meta:
        model = Order

    trade = factory.SubFactory(TradeFactory)
    exchange = factory.LazyAttribute(lambda o: o.trade.opportunity.buy_exchange)
    side = Order.Side.BUY
    limit_price = Decimal(100)
    amount = Decimal(1)
    filled_amount = factory.LazyAttribute(lambda o: o.amount)
    average_price = factory.LazyAttribute(lambda o: o.limit_price if o.filled_amount else None)
    fee = Decimal(0)
    client_order_id = factory.Sequence(lambda n: f"test-order-{n}")
    state = Order.State.FILLED


class FillFactory(factory.django.DjangoModelFactory):
    """One fill of the whole of its order."""

    class Meta:
        model = Fill

    order = factory.SubFactory(OrderFactory)
    price = factory.LazyAttribute(lambda o: o.order.average_price)
    amount = factory.LazyAttribute(lambda o: o.order.filled_amount)
    fee = factory.LazyAttribute(lambda o: o.order.fee)
    at = factory.LazyAttribute(lambda o: o.order.trade.closed_at)


def settled_trade(opportunity, *, at, legs, state=Trade.State.CLOSED, mode="paper", expected=None):
    """A trade closed at `at` with one order and one fill per (purpose, side, price, filled, fee
    [, ordered amount]) in `legs`; its realised PnL is sells - buys - fees."""
    realised = (
        sum((p * a if side == "sell" else -p * a) - fee for _, side, p, a, fee, *_ in legs)
        if legs
        else None
    )
    trade = TradeFactory(
        opportunity=opportunity,
        mode=mode,
        state=state,
        created_at=at,
        closed_at=at,
        realised_net_profit=realised if state == Trade.State.CLOSED else None,
        expected_net_profit=expected if expected is not None else (realised or Decimal(0)),
    )
    for purpose, side, price, filled, fee, *ordered in legs:
        venue = opportunity.buy_exchange if side == "buy" else opportunity.sell_exchange
        order = OrderFactory(
            trade=trade,
            exchange=venue,
            purpose=purpose,
            side=side,
            limit_price=price,
            amount=ordered[0] if ordered else filled,
            filled_amount=filled,
            state="filled" if not ordered else "partially_filled",
            fee=fee,
        )
        FillFactory(order=order)
    return trade


def report_history(day):
    """The hand-computed report fixture on UTC `day` (a date); see tests/trading/reports/.

    BTC-USD buyv->sellv paper: A wins 1.696 (fees 0.304); B partly filled then hedged, realised
    1.0985 against 3.5 expected (fees 0.4015); D failed. ETH-USD buyv->sellv live: C loses
    0.1199 (fees 0.0199). Not taken: X (refused max notional 2, kill switch 1), Y (max notional 3);
    Z still open.
    """
    from datetime import UTC, datetime, time, timedelta

    d = Decimal
    start = datetime.combine(day, time.min, tzinfo=UTC)
    btc = MarketFactory(symbol="BTC-USD")
    eth = MarketFactory(symbol="ETH-USD")
    buy = ExchangeFactory(slug="buyv", name="Buyv")
    sell = ExchangeFactory(slug="sellv", name="Sellv")

    def opportunity(market, opened_h, seconds, peak, refusals=None):
        opened = start + timedelta(hours=opened_h)
        return OpportunityFactory(
            market=market,
            buy_exchange=buy,
            sell_exchange=sell,
            opened_at=opened,
            detected_at=opened,
            state="closed" if seconds is not None else "open",
            closed_at=opened + timedelta(seconds=seconds) if seconds is not None else None,
            peak_net_profit=d(peak),
            refusals=refusals or {},
        )

    a = settled_trade(
        opportunity(btc, 1, 0.5, "2"),
        at=start + timedelta(hours=1, seconds=1),
        legs=[("leg", "buy", d(100), d(1), d("0.1")), ("leg", "sell", d(102), d(1), d("0.204"))],
    )
    b = settled_trade(
        opportunity(btc, 2, 3, "4"),
        at=start + timedelta(hours=2, seconds=5),
        expected=d("3.5"),
        legs=[
            ("leg", "buy", d(100), d(2), d("0.2")),
            ("leg", "sell", d(101), d(1), d("0.101"), d(2)),
            ("hedge", "sell", d("100.5"), d(1), d("0.1005")),
        ],
    )
    c = settled_trade(
        opportunity(eth, 2, 40, "0.5"),
        at=start + timedelta(hours=23, minutes=59, seconds=59),
        mode="live",
        legs=[("leg", "buy", d(10), d(1), d("0.01")), ("leg", "sell", d("9.9"), d(1), d("0.0099"))],
    )
    failed = settled_trade(
        opportunity(btc, 3, 700, "1"), at=start + timedelta(hours=3), state="failed", legs=[]
    )
    opportunity(btc, 3, 10, "1.5", {"max notional": 2, "kill switch": 1})
    opportunity(btc, 5, 200, "0.5", {"max notional": 3})
    opportunity(btc, 23, None, "0.5")
    return {"a": a, "b": b, "c": c, "failed": failed, "btc": btc, "eth": eth, "buy": buy}


def live_desk(
    *,
    urls: tuple[str, str],
    keys: tuple[tuple[str, str], tuple[str, str]],
    buy_funding: dict | None = None,
    sell_funding: dict | None = None,
):
    """`paper_desk` in live mode on two Binance-speaking venues at `urls` (REST stand-ins):
    BTC-USDT listed as BTCUSDT, (api key, secret) `keys` stored encrypted (CREDENTIALS_KEY must
    be set), live accounts funded by deposits and an active live profile."""
    from markets.models import ExchangeCredential
    from portfolio.services import open_account

    market = MarketFactory(symbol="BTC-USDT")
    venues = []
    for slug, fee, url, (api_key, secret) in zip(
        ("livebuy", "livesell"), (Decimal(10), Decimal(20)), urls, keys, strict=True
    ):
        exchange = ExchangeFactory(slug=slug, taker_fee_bps=fee, rest_url=url)
        ListingFactory(exchange=exchange, market=market, venue_symbol="BTCUSDT")
        credential = ExchangeCredential(exchange=exchange)
        credential.set_keys(api_key=api_key, secret=secret)
        credential.save()
        venues.append(exchange)
    buy, sell = venues
    open_account(exchange=buy, mode="live", funding=buy_funding or {"USDT": Decimal(1000)})
    open_account(exchange=sell, mode="live", funding=sell_funding or {"BTC": Decimal(5)})
    profile = RiskProfileFactory(name="live test", mode="live")
    profile.allowed_exchanges.set([buy, sell])
    profile.allowed_markets.set([market])
    return OpportunityFactory(market=market, buy_exchange=buy, sell_exchange=sell)


def trade_with_legs(
    opportunity: Opportunity, *, state: str = "closed", mode: str = "paper"
) -> Trade:
    """A trade of 1 unit bought at 100 and sold at 102, each leg filled once with a 0.1 fee."""
    now = timezone.now()
    trade = Trade.objects.create(
        opportunity=opportunity,
        mode=mode,
        state=state,
        requested_size=Decimal(1),
        expected_net_profit=Decimal("1.798"),
        realised_net_profit=Decimal("1.5") if state == "closed" else None,
        created_at=now,
        state_changed_at=now,
    )
    for side, exchange, price in (
        ("buy", opportunity.buy_exchange, Decimal(100)),
        ("sell", opportunity.sell_exchange, Decimal(102)),
    ):
        order = Order.objects.create(
            trade=trade,
            exchange=exchange,
            side=side,
            limit_price=price,
            amount=Decimal(1),
            filled_amount=Decimal(1),
            average_price=price,
            fee=Decimal("0.1"),
            client_order_id=f"t{trade.pk}-{side}",
            state="filled",
        )
        Fill.objects.create(order=order, price=price, amount=Decimal(1), fee=Decimal("0.1"))
    return trade


def timed_orders(exchange, times_ms, *, mode="live", start=None) -> None:
    """One order per acknowledgement time (ms) on `exchange`, each in a trade of its own in
    `mode`, each a second newer than the one before, from `start` (an hour ago)."""
    from datetime import timedelta

    start = start or timezone.now() - timedelta(hours=1)
    for i, ms in enumerate(times_ms):
        at = start + timedelta(seconds=i)
        trade = TradeFactory(mode=mode, created_at=at)
        OrderFactory(trade=trade, exchange=exchange, ack_ms=ms, created_at=at)


def partially_filled_trade(sold: str = "0.995") -> Trade:
    """Bought 1 at 100 (fee 0.1), sold only `sold` at 102 (fee 0.1): partially filled."""
    trade = trade_with_legs(OpportunityFactory(), state="partially_filled")
    sell = trade.orders.get(side="sell")
    sell.filled_amount = Decimal(sold)
    sell.state = Order.State.PARTIALLY_FILLED
    sell.save()
    sell.fills.update(amount=Decimal(sold))
    return trade
