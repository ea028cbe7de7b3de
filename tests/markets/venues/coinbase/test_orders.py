"""The Coinbase live venue against the simulated Coinbase over loopback: fills, refusals, lost
answers, and the ES256 JWTs both sides check."""

import asyncio
import base64
import json
import time
from decimal import Decimal

import aiohttp
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from markets.models import ExchangeCredential
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.coinbase import orders as live
from markets.venues.coinbase.orders import LiveVenue, build_jwt
from markets.venues.coinbase.sim import FILLS_LIST, ORDERS_LIST
from markets.venues.live import live_venue
from markets.venues.orders import FillReport, OrderRequest, OrderUnknown
from tests.factories import ExchangeFactory
from tests.markets.simulated import FAST, coinbase, frames

D = Decimal
KEY_NAME = "organizations/org-1/apiKeys/key-1"
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PEM = PRIVATE.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,  # SEC1, as Coinbase hands it out
    serialization.NoEncryption(),
).decode()
ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
BIDS = [(D(99), D(1))]
FAST_MS = 600  # the client's timeout in the lost-answer tests (a lookup on a loaded machine
# took longer than 300 ms); the venue answers LATE_S late
LATE_S = 2.0
# The venue's book holds still: only the orders and the tests move it.
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)


@pytest_asyncio.fixture
async def simulator():
    listing = SimListing("BTC-USD", D("0.01"), D("0.0001"))
    markets = {"BTC-USD": MarketSpec(mid=D(100), size=D(1), listings={"coinbase": listing})}
    async with VenueSimulator(markets=markets, profiles={"coinbase": STILL}, timing=FAST) as sim:
        venue = sim.venues["coinbase"]
        venue.keys[KEY_NAME] = PRIVATE.public_key()
        venue.set_book("BTC-USD", bids=BIDS, asks=ASKS)
        yield sim


@pytest.fixture
def venue(simulator):
    return simulator.venues["coinbase"]


@pytest.fixture
def api_url(simulator) -> str:
    return f"http://127.0.0.1:{simulator.port}/coinbase"


def client(api_url: str, **kwargs) -> LiveVenue:
    return LiveVenue(api_key=KEY_NAME, secret=PEM, api_url=api_url, **kwargs)


def request(
    side: str = "buy", amount: str = "1", limit: str = "100", cid: str = ""
) -> OrderRequest:
    """An order as the desk sends it; its client id carries the trade's creation time."""
    created = int(time.time() * 1000)
    return OrderRequest(
        client_order_id=cid or f"arb-7-{created:x}-{side}",
        venue="coinbase",
        market="BTC-USD",
        venue_symbol="BTC-USD",
        side=side,
        amount=D(amount),
        limit_price=D(limit),
        taker_fee_bps=D(60),
    )


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def es256(claims: dict, header: dict | None = None) -> str:
    """A JWT over `claims`, signed with the test key as the venue's client would."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    head = header or {"alg": "ES256", "kid": KEY_NAME, "typ": "JWT", "nonce": "ab"}
    signing_input = f"{part(head)}.{part(claims)}"
    r, s = decode_dss_signature(PRIVATE.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


async def list_orders(api_url: str, token: str) -> int:
    url = f"{api_url}/api/v3/brokerage/orders/historical/batch?product_ids=BTC-USD"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status


@pytest.mark.asyncio
async def test_an_ioc_order_fills_level_by_level_with_its_commission_in_quote(venue, api_url):
    req = request()

    report = await client(api_url).place_ioc(req)

    order = venue.orders[req.client_order_id]
    assert (order["status"], order["filled_size"]) == ("FILLED", "1")
    assert report.venue_order_id == order["order_id"]
    assert report.fills == (
        FillReport(price=D("99.5"), amount=D("0.4"), fee=D("0.2388")),
        FillReport(price=D(100), amount=D("0.6"), fee=D("0.36")),
    )
    assert venue.books["BTC-USD"].best() == (D(99), D(100))  # the fill took the best ask


@pytest.mark.asyncio
async def test_a_fill_moves_the_book_the_venue_publishes(simulator, api_url):
    ws = await coinbase(simulator, "BTC-USD")
    await frames(ws, 0.2)

    await client(api_url).place_ioc(request(amount="0.5"))

    messages = [json.loads(m) for m in await frames(ws, 0.3)]
    await ws.close()
    updates = [
        u for m in messages if m["channel"] == "l2_data" for e in m["events"] for u in e["updates"]
    ]
    assert {(u["side"], u["price_level"], u["new_quantity"]) for u in updates} == {
        ("offer", "99.50", "0"),
        ("offer", "100.00", "0.9"),
    }


@pytest.mark.asyncio
async def test_an_order_under_the_asks_takes_nothing_and_is_no_error(venue, api_url):
    req = request(limit="99.4")

    report = await client(api_url).place_ioc(req)

    assert (report.fills, report.error) == ((), "")
    assert report.venue_order_id == venue.orders[req.client_order_id]["order_id"]
    assert venue.orders[req.client_order_id]["status"] == "CANCELLED"
    assert venue.books["BTC-USD"].best() == (D(99), D("99.5"))


@pytest.mark.asyncio
async def test_our_client_order_id_is_the_one_on_the_wire(venue, api_url):
    req = request()

    await client(api_url).place_ioc(req)

    assert venue.posts == {req.client_order_id: 1}
    assert list(venue.orders) == [req.client_order_id]


@pytest.mark.asyncio
async def test_a_second_placing_of_the_same_order_reports_it_and_sends_nothing(venue, api_url):
    req = request(amount="2", limit="99.5")
    first = await client(api_url).place_ioc(req)

    again = await client(api_url).place_ioc(req)

    assert first.filled == D("0.4")
    assert again == first
    assert venue.posts == {req.client_order_id: 1}


@pytest.mark.asyncio
@pytest.mark.parametrize("duplicates", ["existing", "refuse"])
async def test_a_retry_the_listing_does_not_show_yet_reports_the_order_the_venue_has(
    venue, api_url, monkeypatch, duplicates
):
    # The listing shows an order only 0.4 s after it was made, so the retry's lookup misses it
    # and the order goes again: the venue answers with the order it has, or refuses the id
    # (then the next lookup, after the pause, finds it).
    monkeypatch.setattr(live, "PAUSE", 0.5)
    venue.duplicates, venue.listed_after = duplicates, 0.4
    req = request(amount="2", limit="99.5")
    first = await client(api_url).place_ioc(req)

    again = await client(api_url).place_ioc(req)

    assert again == first and first.filled == D("0.4")
    assert list(venue.orders) == [req.client_order_id]
    assert venue.posts[req.client_order_id] >= 2


@pytest.mark.asyncio
async def test_orders_and_fills_are_listed_page_by_page(venue, api_url):
    venue.page_size = 1
    first = request(amount="0.5", limit="100", cid="arb-7-1-buy")
    for cid in ("arb-7-1-buy", "arb-8-1-buy", "arb-9-1-buy"):
        await client(api_url).place_ioc(request(amount="0.5", cid=cid))

    found = await client(api_url).find_order(first)

    assert found is not None
    assert [(f.price, f.amount) for f in found.fills] == [(D("99.5"), D("0.4")), (D(100), D("0.1"))]


@pytest.mark.asyncio
@pytest.mark.parametrize("duplicates", ["existing", "refuse"])
async def test_a_lost_answer_finds_the_order_and_the_venue_holds_exactly_one(
    venue, api_url, monkeypatch, duplicates
):
    # The listing shows an order only 1.2 s after it was made: the lookup right after the lost
    # answer (0.6 s) misses it, so the client sends the same client id again, which the venue
    # answers with the order it has, or by refusing the id (then the next lookup finds it).
    monkeypatch.setattr(live, "PAUSE", 1.6)
    venue.duplicates, venue.listed_after = duplicates, 2 * FAST_MS / 1000
    venue.inject_rest_fault("timeout", delay=LATE_S)
    req = request()

    report = await client(api_url, timeout_ms=FAST_MS).place_ioc(req)

    assert not venue.rest_faults  # the order's answer did come too late
    assert list(venue.orders) == [req.client_order_id]
    assert venue.posts == {req.client_order_id: 2}
    assert report.venue_order_id == venue.orders[req.client_order_id]["order_id"]
    assert report.filled == D(1)
    assert sum(len(fills) for fills in venue.fills.values()) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("refused", [1, live.LOOKUPS])
async def test_a_refused_resend_after_a_lost_answer_is_not_taken_as_the_orders_fate(
    venue, api_url, monkeypatch, refused
):
    # The order is placed and fills, its answer is lost, the listing does not show it yet, and
    # the re-sends of its client id are throttled: the order's fate is the venue's record of it
    # (once a re-send gets an answer), or unknown, never the 429.
    monkeypatch.setattr(live, "PAUSE", 0.05)
    venue.listed_after = 30.0
    venue.inject_rest_fault("timeout", delay=LATE_S)
    req = request()
    placing = asyncio.create_task(client(api_url, timeout_ms=FAST_MS).place_ioc(req))
    while not venue.posts.get(req.client_order_id):
        await asyncio.sleep(0.01)
    venue.inject_rest_fault("rate_limit", times=refused)

    if refused == live.LOOKUPS:
        with pytest.raises(OrderUnknown, match="the re-send refused: HTTP 429"):
            await placing
    else:
        report = await placing
        assert (report.error, report.filled) == ("", D(1))
    assert venue.orders[req.client_order_id]["filled_size"] == "1"


@pytest.mark.asyncio
async def test_a_server_error_after_the_order_executed_is_looked_up_not_resent(venue, api_url):
    venue.inject_rest_fault("server_error")
    req = request()

    report = await client(api_url).place_ioc(req)

    assert venue.posts == {req.client_order_id: 1}
    assert report.filled == D(1)


@pytest.mark.asyncio
async def test_an_order_whose_lookups_also_fail_is_unknown_and_found_later(venue, api_url):
    venue.inject_rest_fault("timeout", delay=LATE_S)
    venue.inject_rest_fault("server_error", route=ORDERS_LIST, times=live.LOOKUPS)
    req = request()
    venue_client = client(api_url, timeout_ms=FAST_MS)

    with pytest.raises(OrderUnknown, match="lookups failed"):
        await venue_client.place_ioc(req)

    found = await venue_client.find_order(req)
    assert found is not None and found.filled == D(1)
    assert venue.posts == {req.client_order_id: 1}


@pytest.mark.asyncio
async def test_an_order_whose_fills_fall_short_of_its_filled_size_is_unknown(venue, api_url):
    venue.inject_rest_fault("tradeless", route=FILLS_LIST)
    req = request()

    with pytest.raises(OrderUnknown, match="fills short of the filled 1"):
        await client(api_url).place_ioc(req)

    found = await client(api_url).find_order(req)  # once the venue lists them
    assert found is not None and found.filled == D(1)


@pytest.mark.asyncio
async def test_an_order_the_venue_never_had_is_not_found(api_url):
    assert await client(api_url).find_order(request()) is None


@pytest.mark.asyncio
async def test_insufficient_funds_is_a_refusal_with_coinbases_reason(venue, api_url):
    venue.balances[KEY_NAME] = {"USD": D(50), "BTC": D(0)}
    req = request()

    report = await client(api_url).place_ioc(req)

    assert report.error == "INSUFFICIENT_FUND: Insufficient balance in source account"
    assert (report.venue_order_id, report.fills) == ("", ())
    assert not venue.orders and venue.posts == {req.client_order_id: 1}


@pytest.mark.asyncio
async def test_a_fill_moves_the_keys_balances_by_the_fill_and_its_commission(venue, api_url):
    venue.balances[KEY_NAME] = {"USD": D(1000), "BTC": D(0)}

    await client(api_url).place_ioc(request())

    assert venue.balances[KEY_NAME] == {"USD": D("1000") - D("99.8") - D("0.5988"), "BTC": D(1)}


def test_the_clients_jwt_verifies_with_the_public_key_and_carries_the_sdks_claims():
    before = int(time.time())

    token = build_jwt(KEY_NAME, PEM, "POST api.coinbase.com/api/v3/brokerage/orders")

    head, payload, signature = token.split(".")
    header, claims = json.loads(unb64(head)), json.loads(unb64(payload))
    raw = unb64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    PRIVATE.public_key().verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    assert (header["alg"], header["kid"], header["typ"], len(header["nonce"])) == (
        "ES256",
        KEY_NAME,
        "JWT",
        64,
    )
    assert claims["sub"] == KEY_NAME and claims["iss"] == "cdp" and "aud" not in claims
    assert before <= claims["nbf"] <= int(time.time())
    assert claims["exp"] == claims["nbf"] + 120
    assert claims["uri"] == "POST api.coinbase.com/api/v3/brokerage/orders"


def test_the_jwt_uri_names_the_host_and_path_without_scheme_or_query():
    venue = client("http://127.0.0.1:8123/coinbase")

    assert venue.uri("GET", "/orders/historical/batch") == (
        "GET 127.0.0.1:8123/coinbase/api/v3/brokerage/orders/historical/batch"
    )
    assert LiveVenue(api_key=KEY_NAME, secret=PEM).uri("POST", "/orders") == (
        "POST api.coinbase.com/api/v3/brokerage/orders"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("scheme", ["", "http://"])
@pytest.mark.parametrize("issuer", ["cdp", "coinbase-cloud"])
async def test_the_sim_takes_the_sdks_and_ccxts_forms_of_the_jwt(
    simulator, api_url, scheme, issuer
):
    now = int(time.time())
    uri = (
        f"GET {scheme}127.0.0.1:{simulator.port}/coinbase/api/v3/brokerage/orders/historical/batch"
    )
    claims = {"sub": KEY_NAME, "iss": issuer, "nbf": now, "exp": now + 120, "uri": uri}

    assert await list_orders(api_url, es256(claims)) == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "change",
    [
        {"exp": 121},
        {"uri": "POST {host}/coinbase/api/v3/brokerage/orders/historical/batch"},
        {"uri": "GET {host}/coinbase/api/v3/brokerage/orders"},
        {"iss": "someone"},
        {"nbf": -200, "exp": -80},
        {"sub": "organizations/org-1/apiKeys/other"},
    ],
    ids=["lives-too-long", "wrong-method", "wrong-path", "wrong-issuer", "expired", "other-sub"],
)
async def test_the_sim_refuses_a_jwt_that_lives_too_long_or_names_another_request(
    simulator, api_url, change
):
    now, host = int(time.time()), f"127.0.0.1:{simulator.port}"
    claims = {
        "sub": KEY_NAME,
        "iss": "cdp",
        "nbf": now,
        "exp": now + 120,
        "uri": f"GET {host}/coinbase/api/v3/brokerage/orders/historical/batch",
    }
    for name, value in change.items():
        claims[name] = now + value if name in ("nbf", "exp") else value.format(host=host)

    assert await list_orders(api_url, es256(claims)) == 401


@pytest.mark.asyncio
async def test_the_sim_refuses_a_jwt_signed_with_another_key(venue, api_url):
    venue.keys[KEY_NAME] = ec.generate_private_key(ec.SECP256R1()).public_key()

    report = await client(api_url).place_ioc(request())

    assert report.error.startswith("not sent, lookup failed: HTTP 401 UNAUTHORIZED")
    assert not venue.posts


@pytest.mark.asyncio
async def test_an_unreachable_venue_is_a_clear_error_and_no_order():
    venue = client("http://127.0.0.1:9/coinbase", timeout_ms=FAST_MS)

    report = await venue.place_ioc(request())

    assert report.error.startswith("not sent, lookup failed: ClientConnectorError")
    assert report.fills == ()


@pytest.mark.asyncio
async def test_a_secret_that_is_no_ec_key_is_a_clear_error_and_no_order(venue, api_url):
    report = await LiveVenue(api_key=KEY_NAME, secret="not a pem", api_url=api_url).place_ioc(
        request()
    )

    assert report.error.startswith("not sent, bad credential: ")
    assert not venue.posts


@pytest.mark.django_db
def test_the_desk_trades_coinbase_live_with_its_key_name_and_pem(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    exchange = ExchangeFactory(slug="coinbase", rest_url="http://127.0.0.1:1/coinbase")
    credential = ExchangeCredential(exchange=exchange)
    credential.set_keys(api_key=KEY_NAME, secret=PEM)
    credential.save()

    venue = live_venue(exchange)

    assert isinstance(venue, LiveVenue)
    assert (venue.api_key, venue.secret, venue.api_url) == (
        KEY_NAME,
        PEM,
        "http://127.0.0.1:1/coinbase",
    )
