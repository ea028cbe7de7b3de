"""The live venue against simulated Binance venues over loopback: fills, refusals, lost answers."""

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from markets.models import Listing
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues import orders as venue_orders
from markets.venues.binance.orders import LiveVenue
from markets.venues.binance.sim import ORDER_GET, SimBinance
from markets.venues.ccxt_orders import LOOKUPS
from markets.venues.live import ORDER_CLASSES
from markets.venues.orders import TIMEOUT_MS, FillReport, OrderRequest, OrderUnknown
from portfolio.models import Account, Balance, LedgerEntry
from tests.factories import live_desk, publish_test_book
from tests.loops import on_loop
from trading.execution.orders import client_order_id
from trading.execution.recovery import recover_trades
from trading.execution.settlement import imbalance
from trading.models import Order, Trade
from trading.reconciliation import reconcile
from trading.tasks import execute_opportunity

D = Decimal
BUY_KEYS, SELL_KEYS = ("buy-key", "buy-secret"), ("sell-key", "sell-secret")
BUY_ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
SELL_BIDS = [(D("102.5"), D("0.3")), (D(102), D(2))]
FAST_MS = 300  # the client's timeout in the lost-answer tests; the venue answers 1 s late
# The venues' books hold still: only the orders and the tests move them.
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)


def simulated_binance(
    loop, keys: tuple[str, str], *, lot: Decimal = Decimal("0.00001"), **settings
) -> VenueSimulator:
    """A simulated Binance listing BTCUSDT on `lot`, taking the API key `keys`, started on `loop`.
    Binance's BTCUSDT refuses orders worth under 5 USDT (its NOTIONAL filter)."""
    listing = SimListing("BTCUSDT", D("0.01"), lot, min_notional=D(5))
    markets = {"BTC-USDT": MarketSpec(mid=D(100), size=D(1), listings={"binance": listing})}
    simulator = VenueSimulator(markets=markets, profiles={"binance": STILL})
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    venue = simulator.venues["binance"]
    venue.keys.update([keys])
    for name, value in settings.items():
        setattr(venue, name, value)
    return simulator


@pytest.fixture
def sell_lot() -> Decimal:
    """The sell venue's BTCUSDT lot (its LOT_SIZE stepSize); a test may give it a coarser one."""
    return D("0.00001")


@pytest.fixture
def simulators(loop, sell_lot):
    """Two simulated Binance venues: the buy venue (10 bps) and the sell venue (20 bps)."""
    buy = simulated_binance(loop, BUY_KEYS, taker_fee_bps=D(10))
    sell = simulated_binance(loop, SELL_KEYS, lot=sell_lot, taker_fee_bps=D(20))
    on_loop(loop, buy.venues["binance"].set_book, "BTCUSDT", bids=[(D(99), D(1))], asks=BUY_ASKS)
    on_loop(loop, sell.venues["binance"].set_book, "BTCUSDT", bids=SELL_BIDS, asks=[(D(103), D(1))])
    yield buy, sell
    for simulator in (buy, sell):
        asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


@pytest.fixture
def venues(simulators) -> tuple[SimBinance, SimBinance]:
    buy, sell = simulators
    return buy.venues["binance"], sell.venues["binance"]


@pytest.fixture
def urls(simulators) -> tuple[str, str]:
    """The two venues' REST base URLs (what `Exchange.rest_url` holds for Binance)."""
    buy, sell = simulators
    return buy.urls["binance_rest"], sell.urls["binance_rest"]


@pytest.fixture
def desk(db, settings, urls, venues, monkeypatch):
    """The live desk wired to the simulated venues, holding there what its ledger says (and
    just reconciled with them), with the engine's view of both books."""
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    for slug in ("livebuy", "livesell"):  # two Exchange rows that both speak Binance's API
        monkeypatch.setitem(ORDER_CLASSES, slug, ORDER_CLASSES["binance"])
    opportunity = live_desk(urls=urls, keys=(BUY_KEYS, SELL_KEYS))
    for venue, (api_key, _), exchange in zip(
        venues,
        (BUY_KEYS, SELL_KEYS),
        (opportunity.buy_exchange, opportunity.sell_exchange),
        strict=True,
    ):
        account = Account.objects.get(exchange=exchange, mode="live")
        venue.balances[api_key] = dict(account.balances.values_list("asset", "amount"))
        reconcile(account)
    publish_test_book("livebuy", "BTC-USDT", bids=[(D(99), D(1))], asks=BUY_ASKS)
    publish_test_book("livesell", "BTC-USDT", bids=SELL_BIDS, asks=[(D(103), D(1))])
    return opportunity


def request(side: str = "buy", amount: str = "1", limit: str = "100", cid: str = "t-1"):
    return OrderRequest(
        client_order_id=cid,
        venue="livebuy",
        market="BTC-USDT",
        venue_symbol="BTCUSDT",
        side=side,
        amount=D(amount),
        limit_price=D(limit),
        taker_fee_bps=D(10),
    )


def place(venue: LiveVenue, req: OrderRequest):
    return asyncio.run(venue.place_ioc(req))


def balances(slug: str) -> dict[str, Decimal]:
    rows = Balance.objects.filter(account__exchange__slug=slug, account__mode="live")
    return {asset: amount.normalize() for asset, amount in rows.values_list("asset", "amount")}


def fast_timeouts(monkeypatch) -> None:
    monkeypatch.setattr(venue_orders, "TIMEOUT_MS", FAST_MS)


def test_an_ioc_order_fills_level_by_level_and_reports_the_venues_fills_exactly(venues, urls):
    buy, _ = venues

    report = place(LiveVenue(api_key="buy-key", secret="buy-secret", api_url=urls[0]), request())

    order = buy.orders["t-1"]
    assert (order["status"], order["executedQty"]) == ("FILLED", "1.00000000")
    assert report.venue_order_id == str(order["orderId"])
    assert report.fills == (
        FillReport(price=D("99.5"), amount=D("0.4"), fee=D("0.0398")),
        FillReport(price=D(100), amount=D("0.6"), fee=D("0.06")),
    )


def test_what_is_beyond_the_limit_expires_and_the_retry_reports_the_same_order(venues, urls):
    buy, _ = venues
    venue = LiveVenue(api_key="buy-key", secret="buy-secret", api_url=urls[0])
    first = place(venue, request(amount="2", limit="99.5"))

    again = place(venue, request(amount="2", limit="99.5"))

    assert buy.orders["t-1"]["status"] == "EXPIRED"
    assert first.filled == D("0.4")
    assert again == first
    assert buy.posts == {"t-1": 1}


def test_a_base_commission_is_reported_in_base_and_valued_at_the_fill_price(loop):
    simulator = simulated_binance(loop, BUY_KEYS, commission_in="base")
    venue = simulator.venues["binance"]
    on_loop(loop, venue.set_book, "BTCUSDT", bids=[], asks=[(D(100), D(1))])
    api_url = simulator.urls["binance_rest"]

    report = place(LiveVenue(api_key="buy-key", secret="buy-secret", api_url=api_url), request())

    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)
    assert venue.trades[int(report.venue_order_id)][0]["commission"] == "0.00100000"
    assert report.fills == (
        FillReport(
            price=D(100), amount=D(1), fee=D("0.1"), fee_asset="BTC", fee_charged=D("0.001")
        ),
    )


@pytest.mark.parametrize(
    ("api_key", "secret", "error"),
    [
        ("buy-key", "wrong", "AuthenticationError: Signature for this request is not valid."),
        ("nobody", "buy-secret", "AuthenticationError: Invalid API-key, IP, or permissions"),
    ],
    ids=["bad-secret", "unknown-key"],
)
def test_bad_credentials_are_a_clear_error_and_no_order(venues, urls, api_key, secret, error):
    buy, _ = venues

    report = place(LiveVenue(api_key=api_key, secret=secret, api_url=urls[0]), request())

    assert report.error.startswith(error)
    assert report.fills == ()
    assert not buy.posts and not buy.orders


@pytest.mark.parametrize(
    ("price", "amount", "error"),
    [
        ("99.995", "1", "InvalidOrder: Filter failure: PRICE_FILTER"),
        ("100", "0.000001", "InvalidOrder: Filter failure: LOT_SIZE"),
        ("100", "0.04", "BadRequest: Filter failure: NOTIONAL"),  # ccxt's class for -1013 here
    ],
)
def test_an_order_off_the_symbols_grid_or_too_small_is_refused_as_binance_refuses_it(
    venues, urls, price, amount, error
):
    buy, _ = venues

    report = place(
        LiveVenue(api_key="buy-key", secret="buy-secret", api_url=urls[0]),
        request(amount=amount, limit=price),
    )

    assert report.error == error
    assert report.fills == () and not buy.orders


def test_an_unreachable_venue_is_a_clear_error_and_no_order():
    venue = LiveVenue(api_key="k", secret="s", api_url="http://127.0.0.1:9", timeout_ms=FAST_MS)

    report = place(venue, request())

    assert report.error.startswith("ExchangeNotAvailable: ")
    assert report.fills == ()


@pytest.mark.parametrize(
    ("fault", "route", "timeout_ms", "unknown"),
    [
        # Its fills answered after the client gave up.
        ("timeout", "GET /api/v3/myTrades", FAST_MS, "fills unread"),
        # Its trades not listed yet: fewer than its executedQty.
        ("tradeless", "GET /api/v3/myTrades", TIMEOUT_MS, "fills short of the executed 1"),
        # Still in the matching engine.
        ("resting", "GET /api/v3/order", TIMEOUT_MS, "still NEW at the venue"),
    ],
)
def test_a_placed_order_a_lookup_cannot_settle_is_unknown_until_one_can(
    venues, urls, loop, fault, route, timeout_ms, unknown
):
    buy, _ = venues
    venue = LiveVenue(
        api_key="buy-key", secret="buy-secret", api_url=urls[0], timeout_ms=timeout_ms
    )
    place(venue, request())
    on_loop(loop, buy.inject_rest_fault, fault, route=route, delay=1.0)

    with pytest.raises(OrderUnknown, match=f"t-1: {unknown}"):
        asyncio.run(venue.find_order(request()))
    # Once the venue answers in full, the lookup settles it.
    assert asyncio.run(venue.find_order(request())).filled == D(1)


@pytest.mark.django_db
def test_a_live_trade_fills_both_legs_and_moves_balances_exactly(desk, venues):
    buy, sell = venues

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    assert (trade.mode, trade.state, trade.realised_net_profit) == ("live", "closed", D("2.0459"))
    assert buy.posts == {client_order_id(trade, "buy"): 1}
    assert sell.posts == {client_order_id(trade, "sell"): 1}
    assert balances("livebuy") == {"BTC": D(1), "USDT": D("900.1002")}
    assert balances("livesell") == {"BTC": D(4), "USDT": D("101.9457")}
    leg = Order.objects.get(trade=trade, side="sell")
    assert leg.venue_order_id == str(sell.orders[leg.client_order_id]["orderId"])


@pytest.mark.django_db
def test_a_commission_taken_in_base_leaves_that_much_less_base_on_the_account(desk, venues):
    buy, _ = venues
    buy.commission_in = "base"  # Binance without BNB: a buy's commission comes out of the BTC

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    # 0.4 @ 99.5 and 0.6 @ 100, 10 bps of each fill's BTC kept by the venue: 0.001 BTC, no USDT.
    assert balances("livebuy") == {"BTC": D("0.999"), "USDT": D("900.2")}
    assert LedgerEntry.objects.filter(
        account__exchange__slug="livebuy", kind="fee"
    ).get().asset == ("BTC")
    # The fee is still counted in PnL, valued at the fill prices (0.0398 + 0.06 USDT).
    assert (trade.state, trade.realised_net_profit) == ("closed", D("2.0459"))
    assert Order.objects.get(trade=trade, side="buy").fee == D("0.0998")


@pytest.mark.django_db
def test_legs_go_at_the_levels_walked_to_and_fill_the_whole_size_at_the_vwaps(desk, venues):
    buy, sell = venues
    # As the detector reports 1 BTC over these books: bought through asks 99.5 and 100 (VWAP
    # 99.8), sold through bids 102.5 and 102 (VWAP 102.15).
    desk.buy_vwap, desk.buy_limit = D("99.8"), D(100)
    desk.sell_vwap, desk.sell_limit = D("102.15"), D(102)
    desk.save()

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    assert buy.orders[client_order_id(trade, "buy")]["price"] == "100.00000000"
    assert sell.orders[client_order_id(trade, "sell")]["price"] == "102.00000000"
    # Limits at the VWAPs would have bought 0.4 and sold 0.3, and paid for a hedge.
    assert [e.to_state for e in trade.events.all()] == ["submitted", "filled", "closed"]
    legs = Order.objects.filter(trade=trade).values_list("side", "filled_amount", "average_price")
    assert sorted(legs) == [("buy", D(1), D("99.8")), ("sell", D(1), D("102.15"))]
    assert trade.realised_net_profit == D("2.0459")  # 102.15 - 99.8 - 0.0998 - 0.2043


@pytest.mark.django_db
def test_rows_without_walked_to_prices_trade_at_their_vwaps_on_the_tick(desk, venues):
    buy, sell = venues
    # VWAPs as the detector reports them, between ticks: 99.8 over two asks, 102.1666... bids.
    desk.buy_vwap, desk.sell_vwap = D("99.800000000001"), D("102.166666666667")
    desk.buy_limit = desk.sell_limit = None
    desk.save()

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    legs = dict(Order.objects.filter(trade=trade, purpose="leg").values_list("side", "limit_price"))
    assert legs == {"buy": D("99.80"), "sell": D("102.17")}
    assert buy.orders[client_order_id(trade, "buy")]["price"] == "99.80000000"
    assert sell.orders[client_order_id(trade, "sell")]["price"] == "102.17000000"
    assert not Order.objects.filter(trade=trade, state="rejected").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("sell_lot", [D("0.01")])
def test_a_hedge_and_an_unwind_are_each_sized_to_their_venues_lot(desk, venues, loop):
    buy, sell = venues
    Listing.objects.filter(exchange__slug="livesell").update(lot_size=D("0.01"))
    # The buy leg finds 0.405 BTC under its limit; the sell venue trades in steps of 0.01 BTC.
    asks = [(D("99.5"), D("0.405")), (D(101), D(1))]
    on_loop(loop, buy.set_book, "BTCUSDT", bids=[(D(99), D(1))], asks=asks)
    on_loop(loop, sell.set_book, "BTCUSDT", bids=SELL_BIDS, asks=[(D("102.5"), D(5))])

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    # Sold 1, bought 0.405: the hedge re-buys 0.595 on the buy venue (nothing under its limit),
    # then the unwind buys back on the sell venue what its step allows, 0.59, not a refused 0.595.
    extra = Order.objects.filter(trade=trade).exclude(purpose="leg").order_by("pk")
    assert list(extra.values_list("purpose", "exchange__slug", "amount", "state")) == [
        ("hedge", "livebuy", D("0.595"), "canceled"),
        ("unwind", "livesell", D("0.59"), "filled"),
    ]
    # The 0.005 left is below the sell venue's lot: the trade stays open for the next pass, whose
    # hedge on the finer venue can take it.
    assert (trade.state, imbalance(trade)) == ("partially_filled", D("-0.005"))


@pytest.mark.django_db
def test_an_unwind_sells_no_more_base_than_a_base_commission_left_on_the_account(
    desk, venues, loop
):
    buy, sell = venues
    buy.commission_in = "base"  # the buy leg's 1 BTC arrives less its 0.001 BTC commission
    # The sell leg and its hedge find no bid; the unwind sells back on the buy venue at 99.4.
    on_loop(loop, buy.set_book, "BTCUSDT", bids=[(D("99.4"), D(2))], asks=BUY_ASKS)
    on_loop(loop, sell.set_book, "BTCUSDT", bids=[(D(90), D(5))], asks=[(D(103), D(1))])

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    # It sells the 0.999 the account holds, not a refused 1; the 0.001 left is a residual the
    # venue holds none of, which stays open with why.
    unwind = Order.objects.get(trade=trade, purpose="unwind")
    assert (unwind.amount, unwind.state, unwind.filled_amount) == (D("0.999"), "filled", D("0.999"))
    assert balances("livebuy")["BTC"] == 0
    assert (trade.state, imbalance(trade)) == ("partially_filled", D("0.001"))


@pytest.mark.django_db
def test_a_leg_worth_less_than_its_venues_minimum_rejects_the_trade_and_sends_nothing(desk, venues):
    buy, sell = venues
    Listing.objects.filter(exchange__slug="livesell").update(min_notional=D(200))

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    # Selling 1 BTC at 102 is worth 102 USDT: the sell venue takes no order under 200, and
    # a buy leg sent alone would leave the desk holding what it bought.
    assert trade.state == "rejected"
    assert trade.failure_reason == (
        "1 BTC at 102 is worth 102 USDT, under livesell's minimum order value of 200"
    )
    assert not Order.objects.filter(trade=trade).exists()
    assert not buy.posts and not sell.posts


@pytest.mark.django_db
def test_a_residual_under_both_venues_minimum_is_flagged_once_and_never_sent(desk, venues, loop):
    buy, sell = venues
    Listing.objects.filter(exchange__slug__in=["livebuy", "livesell"]).update(min_notional=D(5))
    # The buy leg finds 0.995 BTC under its limit and the sell leg sells 1: 0.005 BTC short.
    asks = [(D("99.5"), D("0.995")), (D(101), D(1))]
    on_loop(loop, buy.set_book, "BTCUSDT", bids=[(D(99), D(1))], asks=asks)

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    # Re-buying 0.005 is worth about 0.5 USDT on either venue, under both minimums of 5: the
    # hedge (buy leg's limit 100 + 50 bps = 100.5) and the unwind (the sell's average 102.15
    # + 50 bps = 102.66075, down to the tick) are not sent, and the trade says why it stays open.
    assert (trade.state, imbalance(trade)) == ("partially_filled", D("-0.005"))
    assert not Order.objects.filter(trade=trade).exclude(purpose="leg").exists()
    assert trade.failure_reason == (
        "left open, no order sent: 0.005 BTC at 100.5 is worth 0.5025 USDT, under livebuy's "
        "minimum order value of 5; 0.005 BTC at 102.66 is worth 0.5133 USDT, under livesell's "
        "minimum order value of 5"
    )
    posts = buy.posts + sell.posts
    events = list(trade.events.values_list("to_state", flat=True))

    # Every recovery pass comes to the same answer: nothing sent, nothing recorded twice.
    assert recover_trades(older_than_s=0) == [trade.pk]
    assert recover_trades(older_than_s=0) == [trade.pk]

    trade.refresh_from_db()
    assert (
        buy.posts + sell.posts
        == posts
        == {client_order_id(trade, "buy"): 1, client_order_id(trade, "sell"): 1}
    )
    assert list(trade.events.values_list("to_state", flat=True)) == events
    assert trade.failure_reason.startswith("left open, no order sent: 0.005 BTC")

    # Once a venue takes it (its minimum lowered), the next pass hedges it and the note goes.
    Listing.objects.filter(exchange__slug="livebuy").update(min_notional=D(0))
    book = buy.books["BTCUSDT"]
    book.listing = replace(book.listing, min_notional=D(0))
    on_loop(loop, buy.set_book, "BTCUSDT", bids=[(D(99), D(1))], asks=[(D(100), D(1))])
    recover_trades(older_than_s=0)

    trade.refresh_from_db()
    assert (trade.state, trade.failure_reason, imbalance(trade)) == ("closed", "", 0)
    assert buy.posts[client_order_id(trade, "hedge-1")] == 1


@pytest.mark.django_db
def test_a_second_delivery_of_the_task_places_no_second_set_of_orders(desk, venues):
    buy, sell = venues
    first = execute_opportunity(desk.pk)

    assert execute_opportunity(desk.pk) == first

    assert Order.objects.count() == 2
    trade = Trade.objects.get(pk=first)
    assert buy.posts == {client_order_id(trade, "buy"): 1}
    assert sell.posts == {client_order_id(trade, "sell"): 1}


@pytest.mark.django_db
def test_an_exchange_error_rejects_the_leg_with_the_venues_message_and_the_trade_unwinds(
    desk, venues, loop
):
    buy, sell = venues
    on_loop(loop, buy.set_book, "BTCUSDT", bids=[(D("99.5"), D(2))], asks=BUY_ASKS)
    on_loop(loop, sell.inject_rest_fault, "error", times=2)  # the sell leg and its hedge

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    leg = Order.objects.get(trade=trade, purpose="leg", side="sell")
    assert (leg.state, leg.error) == (
        "rejected",
        "InsufficientFunds: Account has insufficient balance for requested action.",
    )
    extra = Order.objects.filter(trade=trade).exclude(purpose="leg")
    assert list(extra.values_list("purpose", "exchange__slug", "state")) == [
        ("hedge", "livesell", "rejected"),
        ("unwind", "livebuy", "filled"),
    ]
    assert (trade.state, trade.hedged_at is not None) == ("closed", True)
    assert trade.realised_net_profit == D("-0.4993")
    assert balances("livebuy") == {"BTC": D(0), "USDT": D("999.5007")}
    assert balances("livesell") == {"BTC": D(5)}


@pytest.mark.django_db
def test_a_timed_out_order_is_found_by_its_client_id_and_not_placed_again(
    desk, venues, loop, monkeypatch
):
    fast_timeouts(monkeypatch)
    _, sell = venues
    on_loop(loop, sell.inject_rest_fault, "timeout", delay=1.0)

    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))

    assert not sell.rest_faults  # the order's answer did come too late
    assert (trade.state, trade.realised_net_profit) == ("closed", D("2.0459"))
    assert sell.posts == {client_order_id(trade, "sell"): 1}
    assert balances("livesell") == {"BTC": D(4), "USDT": D("101.9457")}


@pytest.mark.django_db
def test_an_order_whose_lookups_also_time_out_is_left_for_recovery_which_finds_it(
    desk, venues, loop, monkeypatch
):
    fast_timeouts(monkeypatch)
    _, sell = venues
    on_loop(loop, sell.inject_rest_fault, "timeout", delay=1.0)
    on_loop(loop, sell.inject_rest_fault, "timeout", route=ORDER_GET, times=LOOKUPS, delay=1.0)
    trade = Trade.objects.get(pk=execute_opportunity(desk.pk))
    cid = client_order_id(trade, "sell")
    assert (trade.state, Order.objects.get(client_order_id=cid).state) == ("submitted", "submitted")

    assert recover_trades(older_than_s=0) == [trade.pk]

    trade.refresh_from_db()
    assert (trade.state, trade.realised_net_profit) == ("closed", D("2.0459"))
    assert sell.posts == {cid: 1}
    assert balances("livesell") == {"BTC": D(4), "USDT": D("101.9457")}
