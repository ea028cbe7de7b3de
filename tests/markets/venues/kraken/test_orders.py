"""The Kraken live venue against the simulated Kraken over loopback: fills, refusals, lost answers,
Kraken's request signing and the nonce counter shared by every process using a key."""

import base64
import json
import threading
import time
import urllib.parse
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet
from django.db import connection
from websockets.asyncio.client import connect

from markets.models import ExchangeCredential
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.ccxt_orders import LOOKUPS
from markets.venues.kraken.orders import LiveVenue, cl_ord_id
from markets.venues.kraken.sim import SimKraken, api_sign
from markets.venues.live import ORDER_CLASSES, live_venue
from markets.venues.orders import FillReport, OrderRequest, OrderUnknown
from tests.factories import ExchangeFactory
from tests.markets.simulated import http

D = Decimal
KEY = "kraken-key"
SECRET = base64.b64encode(
    b"the simulated kraken secret, 64 bytes long, as Kraken's are......"
).decode()
ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
BIDS = [(D(99), D(1))]
FAST_MS = 300  # the client's timeout in the lost-answer tests; the venue answers 1 s late
# The book holds still: only the orders and the tests move it.
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)


@pytest_asyncio.fixture
async def simulator():
    listing = SimListing("BTC/USD", D("0.1"), D("0.00000001"), min_notional=D(5))
    markets = {"BTC-USD": MarketSpec(mid=D(100), size=D(1), listings={"kraken": listing})}
    async with VenueSimulator(markets=markets, profiles={"kraken": STILL}) as simulator:
        kraken = simulator.venues["kraken"]
        kraken.keys[KEY] = SECRET
        kraken.set_book("BTC/USD", bids=BIDS, asks=ASKS)
        yield simulator


@pytest.fixture
def kraken(simulator) -> SimKraken:
    return simulator.venues["kraken"]


@pytest.fixture
def url(simulator) -> str:
    """The simulated Kraken's REST base URL (what `Exchange.rest_url` holds for Kraken)."""
    return f"http://{simulator.host}:{simulator.port}/kraken"


def request(side="buy", amount="1", limit="100", cid="arb-7-18c3f2a9b10-buy") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        venue="kraken",
        market="BTC-USD",
        venue_symbol="BTC/USD",
        side=side,
        amount=D(amount),
        limit_price=D(limit),
        taker_fee_bps=D(26),
    )


def venue(url: str, **kwargs) -> LiveVenue:
    return LiveVenue(api_key=KEY, secret=SECRET, api_url=url, **kwargs)


def asks(kraken: SimKraken) -> dict[Decimal, Decimal]:
    book = kraken.books["BTC/USD"]
    listing = book.listing
    return {p * listing.tick: q * listing.lot for p, q in book.book.side("ask").items()}


def signed_body(nonce: int, **params: str) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode({"nonce": nonce, **params})
    sign = api_sign("/0/private/Balance", body, str(nonce), SECRET)
    return body.encode(), {"API-Key": KEY, "API-Sign": sign}


@pytest.mark.asyncio
async def test_an_ioc_buy_fills_level_by_level_with_its_fee_in_quote_and_moves_the_book(
    kraken, url
):
    report = await venue(url).place_ioc(request())

    (txid, order), *others = kraken.orders.items()
    assert not others and report.venue_order_id == txid
    assert (order["status"], order["vol_exec"], order["oflags"]) == ("closed", "1.00000000", "fciq")
    assert report.fills == (
        FillReport(D("99.5"), D("0.4"), D("0.10348")),  # 26 bps of 39.8 USD
        FillReport(D(100), D("0.6"), D("0.156")),
    )
    assert asks(kraken) == {D(100): D("0.4")}


@pytest.mark.asyncio
async def test_an_order_priced_under_the_asks_takes_nothing_and_is_not_a_refusal(kraken, url):
    report = await venue(url).place_ioc(request(limit="99"))

    assert report.venue_order_id in kraken.orders
    assert (report.fills, report.error) == ((), "")
    assert kraken.orders[report.venue_order_id]["status"] == "canceled"
    assert asks(kraken) == dict(ASKS)


@pytest.mark.asyncio
async def test_the_cl_ord_id_on_the_wire_is_a_uuid_and_a_retry_finds_the_order_not_a_second(
    kraken, url
):
    first = await venue(url).place_ioc(request())
    again = await venue(url).place_ioc(request())

    sent = cl_ord_id("arb-7-18c3f2a9b10-buy")
    assert str(uuid.UUID(sent)) == sent and cl_ord_id("arb-7-18c3f2a9b10-buy") == sent
    assert [o["cl_ord_id"] for o in kraken.orders.values()] == [sent]
    assert kraken.posts == {sent: 1}
    assert again == first


@pytest.mark.asyncio
async def test_an_order_whose_answer_is_lost_is_found_by_lookup_and_not_placed_twice(kraken, url):
    kraken.inject_rest_fault("timeout", delay=1.0)

    report = await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    assert len(kraken.orders) == 1 and kraken.posts[cl_ord_id(request().client_order_id)] == 1
    assert report.venue_order_id in kraken.orders and report.filled == D(1)


@pytest.mark.asyncio
async def test_a_lost_order_is_taken_as_never_placed_only_once_its_deadline_has_passed(kraken, url):
    # Until its deadline (at least 2 s ahead) the engine may still take an order whose request
    # was slow to arrive, so a lookup before then cannot say it never will.
    kraken.inject_rest_fault("lost", delay=1.0)
    seen: list[tuple[float, str, dict]] = []
    answer = kraken.answer

    def spy(rest):
        seen.append((time.time(), rest.path, dict(urllib.parse.parse_qsl(rest.body))))
        return answer(rest)

    kraken.answer = spy

    report = await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    placed = next(params for _, path, params in seen if path.endswith("/AddOrder"))
    deadline = datetime.fromisoformat(placed["deadline"]).timestamp()
    last_lookup = max(at for at, path, _ in seen if path.endswith("/ClosedOrders"))
    assert report.error.endswith("the venue has no such order")
    assert last_lookup >= deadline
    assert kraken.orders == {}


@pytest.mark.asyncio
async def test_an_unreadable_answer_to_an_order_is_looked_up_and_the_order_found(kraken, url):
    kraken.inject_rest_fault("unreadable")

    report = await venue(url).place_ioc(request())

    assert len(kraken.orders) == 1 and report.venue_order_id in kraken.orders
    assert report.filled == D(1) and report.error == ""


@pytest.mark.asyncio
async def test_a_lost_answer_whose_lookups_fail_raises_order_unknown(kraken, url):
    kraken.inject_rest_fault("timeout", delay=1.0)
    kraken.inject_rest_fault("unavailable", route="/0/private/OpenOrders", times=LOOKUPS)

    with pytest.raises(OrderUnknown, match="lookups failed"):
        await venue(url, timeout_ms=FAST_MS).place_ioc(request())

    assert len(kraken.orders) == 1  # the venue has it: recovery will find it


@pytest.mark.asyncio
async def test_an_order_still_open_at_the_venue_is_not_taken_as_settled(kraken, url):
    r = request()
    kraken.hold_order(
        KEY, "BTC/USD", side="buy", price=D(100), amount=D(1), cid=cl_ord_id(r.client_order_id)
    )

    with pytest.raises(OrderUnknown, match="open at the venue"):
        await venue(url).find_order(r)


@pytest.mark.asyncio
async def test_an_order_still_open_right_after_it_is_placed_is_left_for_recovery(kraken, url):
    kraken.inject_rest_fault("resting")

    with pytest.raises(OrderUnknown, match="open at the venue"):
        await venue(url).place_ioc(request())

    assert len(kraken.orders) == 1  # placed once: recovery finds it when it is done


@pytest.mark.asyncio
async def test_a_closed_order_listed_without_its_trades_is_not_taken_as_unfilled(kraken, url):
    assert (await venue(url).place_ioc(request())).filled == 1
    kraken.inject_rest_fault("tradeless", route="/0/private/ClosedOrders")

    with pytest.raises(OrderUnknown, match="fills short of the executed 1"):
        await venue(url).find_order(request())


@pytest.mark.asyncio
async def test_an_order_the_balance_cannot_cover_is_refused_and_nothing_trades(kraken, url):
    kraken.balances[KEY] = {"ZUSD": D(50), "XXBT": D(0)}

    report = await venue(url).place_ioc(request())

    assert (report.venue_order_id, report.fills) == ("", ())
    assert report.error == "InsufficientFunds: EOrder:Insufficient funds"
    assert kraken.orders == {} and kraken.balances[KEY] == {"ZUSD": D(50), "XXBT": D(0)}


@pytest.mark.asyncio
async def test_a_fill_moves_the_keys_balances_by_the_volume_the_cost_and_the_fee(kraken, url):
    kraken.balances[KEY] = {"ZUSD": D(1000)}

    await venue(url).place_ioc(request(amount="0.4"))

    assert kraken.balances[KEY] == {"ZUSD": D(1000) - D("39.8") - D("0.10348"), "XXBT": D("0.4")}


@pytest.mark.asyncio
async def test_an_invalid_nonce_answer_to_an_order_is_a_refusal_without_a_lookup(kraken, url):
    kraken.inject_rest_fault("error", message="EAPI:Invalid nonce")

    report = await venue(url).place_ioc(request())

    assert report.error == "InvalidNonce: EAPI:Invalid nonce"
    assert kraken.orders == {} and kraken.rest_faults == []


def test_the_signature_is_krakens_worked_example():
    secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    body = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"

    sign = api_sign("/0/private/AddOrder", body, "1616492376594", secret)

    assert sign == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )


@pytest.mark.asyncio
async def test_the_simulated_kraken_refuses_a_nonce_not_above_the_last_accepted(kraken, url):
    kraken.balances[KEY] = {"ZUSD": D(5)}
    answers = []
    for nonce in (1000, 1000, 999, 1001):
        body, headers = signed_body(nonce)
        answers.append(await http(f"{url}/0/private/Balance", "POST", body=body, headers=headers))

    invalid = (200, {"error": ["EAPI:Invalid nonce"], "result": {}})
    ok = (200, {"error": [], "result": {"ZUSD": "5.0000000000"}})
    assert answers == [ok, invalid, invalid, ok]


@pytest.mark.asyncio
async def test_the_simulated_kraken_refuses_a_bad_signature_as_kraken_writes_it(kraken, url):
    body, headers = signed_body(1000)

    answer = await http(f"{url}/0/private/Balance", "POST", body=body + b"&x=1", headers=headers)

    assert answer == (200, {"error": ["EAPI:Invalid signature"], "result": {}})


@pytest.mark.asyncio
async def test_a_fill_is_published_on_the_book_channel(simulator, url):
    async with connect(simulator.urls["kraken"]) as ws:
        params = {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}
        await ws.send(json.dumps({"method": "subscribe", "params": params}))
        seen = [json.loads(await ws.recv()) for _ in range(3)]  # status, ack, snapshot
        await venue(url).place_ioc(request(amount="0.4"))
        update = json.loads(await ws.recv())

    assert seen[2]["type"] == "snapshot"
    assert update["type"] == "update"
    assert update["data"][0]["asks"] == [{"price": 99.5, "qty": 0.0}]


def test_kraken_is_registered_as_a_live_venue():
    assert ORDER_CLASSES["kraken"] is LiveVenue


@pytest.mark.django_db(transaction=True)
def test_concurrent_connections_never_draw_a_nonce_that_does_not_rise(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    credential = ExchangeCredential(exchange=ExchangeFactory(slug="kraken"))
    credential.set_keys(api_key=KEY, secret=SECRET)
    credential.save()
    drawn: dict[int, list[int]] = {}

    def draw(worker: int) -> None:
        # Its own connection, as each Celery worker process has.
        mine = ExchangeCredential(pk=credential.pk)
        try:
            drawn[worker] = [mine.next_nonce(5) for _ in range(40)]  # a clock stuck at 5
        finally:
            connection.close()

    workers = [threading.Thread(target=draw, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    every = [nonce for nonces in drawn.values() for nonce in nonces]
    assert len(drawn) == 4 and sorted(every) == list(range(5, 5 + 160))
    assert all(nonces == sorted(nonces) for nonces in drawn.values())
    credential.refresh_from_db()
    assert credential.last_nonce == 164


@pytest.mark.django_db
def test_saving_a_credential_read_earlier_never_sets_its_nonce_back(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    credential = ExchangeCredential(exchange=ExchangeFactory(slug="kraken"))
    credential.set_keys(api_key=KEY, secret=SECRET)
    credential.save()
    read_earlier = ExchangeCredential.objects.get(pk=credential.pk)
    credential.next_nonce(10**12)

    read_earlier.set_keys(api_key="new-key", secret=SECRET)
    read_earlier.save()

    stored = ExchangeCredential.objects.get(pk=credential.pk)
    assert (stored.api_key, stored.last_nonce) == ("new-key", 10**12)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_live_venue_for_kraken_signs_with_the_credentials_shared_counter(settings, url):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()

    def kraken_exchange():
        exchange = ExchangeFactory(slug="kraken", rest_url=url)
        credential = ExchangeCredential(exchange=exchange, last_nonce=10**15)
        credential.set_keys(api_key=KEY, secret=SECRET)
        credential.save()
        return exchange, credential

    exchange, credential = await sync_to_async(kraken_exchange)()
    venue = await sync_to_async(live_venue)(exchange)

    found = await venue.find_order(request())

    await sync_to_async(credential.refresh_from_db)()
    assert found is None
    assert credential.last_nonce == 10**15 + 2  # OpenOrders, then ClosedOrders
