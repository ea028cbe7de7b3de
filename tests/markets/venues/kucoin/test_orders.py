"""The KuCoin live venue against the simulated KuCoin over loopback: HF IOC orders and their fills,
refusals, lost answers, key-version-2 signing with the passphrase, fee tier and balances."""

import time
from decimal import Decimal

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from markets.models import ExchangeCredential
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.ccxt_orders import LOOKUPS
from markets.venues.kucoin.orders import RETENTION_S, LiveVenue, sign
from markets.venues.kucoin.sim import BY_CLIENT_OID, SimKucoin
from markets.venues.live import ORDER_CLASSES, live_venue
from markets.venues.orders import FeeTier, FillReport, OrderRequest, OrderUnknown
from tests.factories import ExchangeFactory
from tests.markets.simulated import http

D = Decimal
KEY, SECRET, PASSPHRASE = "kucoin-key", "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3", "desk passphrase"
ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
BIDS = [(D(99), D(1))]
FUNDING = {"BTC": D(2), "USDT": D(1000)}
FAST_MS = 300  # the client's timeout in the lost-answer tests; the venue answers 1 s late
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)  # only the orders move the book
CID = f"arb-7-{int(time.time() * 1000):x}-buy"  # a trade created as the tests start


@pytest_asyncio.fixture
async def simulator():
    listing = SimListing("BTC-USDT", D("0.1"), D("0.00000001"), min_notional=D(5))
    markets = {"BTC-USD": MarketSpec(mid=D(100), size=D(1), listings={"kucoin": listing})}
    async with VenueSimulator(markets=markets, profiles={"kucoin": STILL}) as simulator:
        kucoin = simulator.venues["kucoin"]
        kucoin.open_account(KEY, SECRET, FUNDING, passphrase=PASSPHRASE)
        kucoin.set_book("BTC-USDT", bids=BIDS, asks=ASKS)
        yield simulator


@pytest.fixture
def kucoin(simulator) -> SimKucoin:
    return simulator.venues["kucoin"]


@pytest.fixture
def url(simulator) -> str:
    return simulator.urls["kucoin_rest"]


def request(side="buy", amount="1", limit="100", cid=None) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid or CID,
        venue="kucoin",
        market="BTC-USD",
        venue_symbol="BTC-USDT",
        side=side,
        amount=D(amount),
        limit_price=D(limit),
        taker_fee_bps=D(10),
    )


def venue(url: str, **kwargs) -> LiveVenue:
    return LiveVenue(
        **{"api_key": KEY, "secret": SECRET, "passphrase": PASSPHRASE, "api_url": url} | kwargs
    )


def asks(kucoin: SimKucoin) -> dict[Decimal, Decimal]:
    book = kucoin.books["BTC-USDT"]
    listing = book.listing
    return {p * listing.tick: q * listing.lot for p, q in book.book.side("ask").items()}


def test_the_signature_is_kucoins_published_example():
    text = '1547015186532POST/api/v1/deposit-addresses{"currency":"BTC"}'

    assert sign("f03a5284-5c39-4aaa-9b20-dea10bdcf8e3", text) == (
        "7QP/oM0ykidMdrfNEUmng8eZjg/ZvPafjIqmxiVfYu4="
    )


@pytest.mark.asyncio
async def test_an_ioc_buy_fills_level_by_level_with_its_fee_in_quote_and_moves_book_and_balances(
    kucoin, url
):
    report = await venue(url).place_ioc(request())

    (order,) = kucoin.orders.values()
    assert report.venue_order_id == order["id"]
    assert (order["dealSize"], order["timeInForce"], order["clientOid"]) == (
        "1",
        "IOC",
        CID,
    )
    assert report.fills == (
        FillReport(D("99.5"), D("0.4"), D("0.0398")),  # 10 bps of 39.8 USDT
        FillReport(D(100), D("0.6"), D("0.06")),
    )
    assert asks(kucoin) == {D(100): D("0.4")}
    assert kucoin.balances[KEY] == {"BTC": D(3), "USDT": D(1000) - D("99.8") - D("0.0998")}


@pytest.mark.asyncio
async def test_an_order_with_more_fills_than_a_page_reads_every_page_of_its_fills(kucoin, url):
    # 150 asks of 0.001 BTC a tick apart: one IOC takes them all, 150 fills, two pages of 100.
    levels = [(D(100) + D("0.1") * i, D("0.001")) for i in range(150)]
    kucoin.set_book("BTC-USDT", bids=BIDS, asks=levels)

    report = await venue(url).place_ioc(request(amount="0.15", limit="115"))

    assert report.fills == tuple(
        FillReport(price, size, (price * size / 1000).quantize(D("0.00000001")))
        for price, size in levels
    )


@pytest.mark.asyncio
async def test_an_order_priced_under_the_asks_takes_nothing_and_is_not_a_refusal(kucoin, url):
    report = await venue(url).place_ioc(request(limit="99"))

    assert (report.fills, report.error) == ((), "")
    assert kucoin.orders[CID]["cancelExist"] is True
    assert asks(kucoin) == dict(ASKS)


@pytest.mark.asyncio
async def test_a_retry_finds_the_order_by_its_client_oid_and_places_no_second(kucoin, url):
    first = await venue(url).place_ioc(request())
    again = await venue(url).place_ioc(request())

    assert again == first
    assert kucoin.posts == {CID: 1}


@pytest.mark.asyncio
async def test_a_slow_answer_within_the_timeout_is_the_order_once_and_on_time(kucoin, url):
    kucoin.inject_rest_fault("slow", delay=0.4)
    started = time.monotonic()

    report = await venue(url).place_ioc(request())

    assert time.monotonic() - started >= 0.4  # the answer itself came late, not a lookup's
    assert report.venue_order_id == kucoin.orders[CID]["id"] and len(report.fills) == 2
    assert kucoin.posts == {CID: 1}


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["timeout", "unreadable"])
async def test_an_order_whose_answer_is_lost_or_unreadable_is_found_by_lookup(kucoin, url, fault):
    kucoin.inject_rest_fault(fault, delay=1.0)

    report = await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    assert kucoin.posts == {CID: 1} and len(kucoin.orders) == 1
    assert report.venue_order_id == kucoin.orders[CID]["id"]
    assert report.filled == D(1)


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["unavailable", "lost"])
async def test_an_unavailable_venue_or_a_lost_request_takes_no_order_and_the_lookup_says_so(
    kucoin, url, fault
):
    kucoin.inject_rest_fault(fault, delay=1.0)

    report = await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    assert kucoin.orders == {} and report.fills == () and kucoin.posts == {}
    assert "the venue has no such order" in report.error


@pytest.mark.asyncio
async def test_a_lost_answer_whose_lookups_fail_raises_order_unknown(kucoin, url):
    kucoin.inject_rest_fault("timeout", delay=1.0)
    kucoin.inject_rest_fault("unavailable", route=f"GET {BY_CLIENT_OID}", times=LOOKUPS)

    with pytest.raises(OrderUnknown, match="lookups failed"):
        await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    assert len(kucoin.orders) == 1  # it was placed: recovery will find it
    assert (await venue(url).find_order(request())).filled == D(1)


@pytest.mark.asyncio
async def test_an_order_the_balance_cannot_cover_is_refused_and_nothing_trades(kucoin, url):
    kucoin.balances[KEY]["USDT"] = D(50)

    report = await venue(url).place_ioc(request())

    assert report.error == "InsufficientFunds: Balance insufficient! (200004)"
    assert kucoin.orders == {} and asks(kucoin) == dict(ASKS)


@pytest.mark.asyncio
async def test_an_error_fault_is_refused_with_the_venues_words(kucoin, url):
    kucoin.inject_rest_fault("error", message="Order size below the minimum requirement.")

    report = await venue(url).place_ioc(request())

    assert "Order size below the minimum requirement." in report.error
    assert kucoin.orders == {}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"api_key": "nobody"}, "KC-API-KEY not exists (400003)"),
        ({"secret": "another secret"}, "Invalid KC-API-PASSPHRASE (400004)"),
        ({"passphrase": "wrong"}, "Invalid KC-API-PASSPHRASE (400004)"),
    ],
)
async def test_bad_credentials_are_a_clear_error_and_no_order(kucoin, url, fields, error):
    report = await venue(url, **fields).place_ioc(request())

    assert error in report.error and report.fills == ()
    assert kucoin.orders == {}


@pytest.mark.asyncio
async def test_the_simulated_kucoin_refuses_a_bad_signature_and_an_old_timestamp(kucoin, url):
    async def call(stamp: int, signature: str | None = None) -> dict:
        path = "/api/v1/accounts"
        headers = {
            "KC-API-KEY": KEY,
            "KC-API-KEY-VERSION": "2",
            "KC-API-TIMESTAMP": str(stamp),
            "KC-API-PASSPHRASE": sign(SECRET, PASSPHRASE),
            "KC-API-SIGN": signature or sign(SECRET, f"{stamp}GET{path}"),
        }
        return (await http(url + path, headers=headers))[1]

    now = int(time.time() * 1000)
    assert (await call(now))["code"] == "200000"
    assert (await call(now, signature=sign(SECRET, "something else")))["code"] == "400005"
    assert (await call(now - 60_000))["code"] == "400002"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("price", "size"), [("99.55", "1"), ("100", "0.000000001"), ("99.5", "0.01")]
)
async def test_an_order_off_the_grid_or_under_the_minimum_is_refused(kucoin, url, price, size):
    report = await venue(url).place_ioc(request(amount=size, limit=price))

    assert report.error.startswith("BadRequest: ") and kucoin.orders == {}


@pytest.mark.asyncio
async def test_a_client_order_id_kucoin_cannot_take_is_refused_before_sending(kucoin, url):
    report = await venue(url).place_ioc(request(cid="x" * 41))

    assert "is no clientOid" in report.error and kucoin.posts == {}


@pytest.mark.asyncio
async def test_a_base_fee_is_reported_in_base_and_valued_at_the_fill_price(kucoin, url):
    kucoin.fee_currency = "base"

    report = await venue(url).place_ioc(request(amount="0.4"))

    assert report.fills == (FillReport(D("99.5"), D("0.4"), D("0.0398"), "BTC", D("0.0004")),)


@pytest.mark.asyncio
async def test_a_fee_in_a_third_currency_is_booked_in_it_and_counted_at_the_tier(kucoin, url):
    kucoin.fee_currency = "KCS"

    report = await venue(url).place_ioc(request(amount="0.4"))

    (fill,) = report.fills
    assert (fill.fee_asset, fill.fee_charged, fill.fee) == ("KCS", D("39.8") / 1000, D("0.0398"))


@pytest.mark.asyncio
async def test_a_placed_order_whose_fills_cannot_be_read_is_unknown_not_refused(kucoin, url):
    kucoin.inject_rest_fault("unavailable", route="GET /api/v1/hf/fills")

    with pytest.raises(OrderUnknown, match="fills unread"):
        await venue(url).place_ioc(request())

    assert len(kucoin.orders) == 1


@pytest.mark.asyncio
async def test_an_order_never_sent_is_not_found(kucoin, url):
    assert await venue(url).find_order(request()) is None


def client_oid(age_s: float) -> str:
    """Our client order id of a trade created `age_s` seconds ago."""
    return f"arb-7-{int((time.time() - age_s) * 1000):x}-buy"


@pytest.mark.asyncio
async def test_an_order_never_sent_by_a_recent_trade_is_not_found(kucoin, url):
    assert await venue(url).find_order(request(cid=client_oid(60))) is None


@pytest.mark.asyncio
async def test_an_order_older_than_kucoin_keeps_finished_ones_is_unknown_not_absent(kucoin, url):
    old = request(cid=client_oid(RETENTION_S + 60))
    # Filled four days ago, as the venue would have then.
    kucoin._fill(KEY, kucoin.books["BTC-USDT"], old.client_order_id, "buy", D(100), D(1))
    kucoin.orders[old.client_order_id]["createdAt"] -= (RETENTION_S + 60) * 1000

    with pytest.raises(OrderUnknown, match="older than the 3 x 24 h KuCoin keeps"):
        await venue(url).find_order(old)


@pytest.mark.asyncio
async def test_fee_tier_and_balances_are_the_accounts(kucoin, url):
    kucoin.taker_fee_bps, kucoin.maker_fee_bps = D("8.5"), D(2)
    symbols = [f"S{i}-USDT" for i in range(12)]

    tier = await venue(url).fetch_fees(symbols)
    held = await venue(url).fetch_balances()

    assert tier == FeeTier(taker_bps=D("8.5"), maker_bps=D(2))
    assert held == FUNDING == kucoin.holdings(KEY)


def test_kucoin_is_registered_as_a_live_venue():
    assert ORDER_CLASSES["kucoin"] is LiveVenue


@pytest.mark.django_db
def test_the_live_venue_for_kucoin_uses_the_credentials_passphrase(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    exchange = ExchangeFactory(slug="kucoin", rest_url="https://api.kucoin.com")
    credential = ExchangeCredential(exchange=exchange)
    credential.set_keys(api_key=KEY, secret=SECRET, passphrase=PASSPHRASE)
    credential.save()

    live = live_venue(exchange)

    assert (live.api_key, live.secret, live.passphrase) == (KEY, SECRET, PASSPHRASE)
    assert live.api_url == "https://api.kucoin.com"
