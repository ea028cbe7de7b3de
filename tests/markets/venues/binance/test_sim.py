"""The simulated Binance over real loopback sockets: depth streams, the REST snapshot, and signed
orders that fill against the very book the streams publish."""

import asyncio
import itertools
import json
import time
from decimal import Decimal

import pytest
import pytest_asyncio

from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from tests.markets.simulated import FAST, binance, frames, http, signed

D = Decimal
# A book that holds still unless an order or the test moves it.
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)
BTCUSDT = {"binance": SimListing("BTCUSDT", D("0.01"), D("0.00001"))}


@pytest_asyncio.fixture
async def still():
    """One simulated Binance listing BTCUSDT, its book as the test sets it, one API key."""
    markets = {"BTC-USDT": MarketSpec(mid=D(100), size=D(1), listings=BTCUSDT)}
    async with VenueSimulator(markets=markets, profiles={"binance": STILL}, timing=FAST) as sim:
        venue = sim.venues["binance"]
        venue.keys["key"] = "secret"
        venue.set_book("BTCUSDT", bids=[(D(99), D(1))], asks=[(D(100), D("0.4")), (D(101), D(1))])
        yield sim


async def depth(sim: VenueSimulator) -> dict:
    _, body = await http(sim.urls["binance_rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
    return body


async def order(sim: VenueSimulator, timestamp: int | None = None, **params: str) -> tuple:
    """Place a signed IOC buy of `params`; return the status and the venue's answer."""
    ioc = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC"}
    body = signed(ioc | params, "secret", timestamp=timestamp)
    headers = {"X-MBX-APIKEY": "key", "Content-Type": "application/x-www-form-urlencoded"}
    url = sim.urls["binance_rest"] + "/api/v3/order"
    return await http(url, "POST", body=body.encode(), headers=headers)


@pytest.mark.asyncio
async def test_binance_rest_snapshot_and_stream_sync_without_gap(sim):
    ws = await binance(sim)
    first = json.loads(await ws.recv())["data"]
    snapshot = await depth(sim)
    assert snapshot["lastUpdateId"] >= first["U"]
    book = {side: {Decimal(p): q for p, q in snapshot[side]} for side in ("bids", "asks")}
    book_id = snapshot["lastUpdateId"]
    applied = 0
    checked = False
    while not checked:
        event = json.loads(await asyncio.wait_for(ws.recv(), 2))["data"]
        if event["u"] <= book_id:
            continue
        assert event["U"] <= book_id + 1, "gap between snapshot/previous event and this event"
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, qty in event[key]:
                book[side].pop(Decimal(price), None)
                if Decimal(qty):
                    book[side][Decimal(price)] = qty
        book_id = event["u"]
        applied += 1
        # A later snapshot taken at exactly our update id must equal the book we built.
        later = await depth(sim)
        if applied >= 3 and later["lastUpdateId"] == book_id:
            for side in ("bids", "asks"):
                assert {Decimal(p): q for p, q in later[side]} == book[side]
            checked = True
    await ws.close()


@pytest.mark.asyncio
async def test_binance_gap_fault_makes_first_update_id_skip_ahead(sim):
    ws = await binance(sim)
    received = await frames(ws, 0.3)
    sim.inject("binance", "gap", symbol="BTC-USD")
    received += await frames(ws, 0.6)
    await ws.close()

    events = [json.loads(m)["data"] for m in received]
    jumps = [b["U"] - a["u"] for a, b in itertools.pairwise(events)]
    assert sum(j > 1 for j in jumps) == 1
    assert all(j >= 1 for j in jumps)


@pytest.mark.asyncio
async def test_a_filled_order_takes_its_levels_off_the_published_book(still):
    ws = await binance(still)
    await frames(ws, 0.2)  # the set-up book's own event
    before = await depth(still)

    status, placed = await order(still, quantity="0.9", price="101", newClientOrderId="c-1")
    (event,) = [json.loads(m)["data"] for m in await frames(ws, 0.3)]
    after = await depth(still)
    await ws.close()

    assert (status, placed["status"], placed["executedQty"]) == (200, "FILLED", "0.90000000")
    assert [(f["price"], f["qty"]) for f in placed["fills"]] == [
        ("100.00000000", "0.40000000"),
        ("101.00000000", "0.50000000"),
    ]
    assert event["a"] == [["100.00000000", "0.00000000"], ["101.00000000", "0.50000000"]]
    assert (event["U"], event["u"]) == (before["lastUpdateId"] + 1, after["lastUpdateId"])
    assert after["asks"] == [["101.00000000", "0.50000000"]]
    assert after["bids"] == before["bids"]


@pytest.mark.asyncio
async def test_an_order_priced_under_the_asks_takes_nothing_and_expires(still):
    before = await depth(still)

    status, placed = await order(still, quantity="0.1", price="99.99", newClientOrderId="c-2")

    assert (status, placed["status"], placed["fills"]) == (200, "EXPIRED", [])
    assert await depth(still) == before


@pytest.mark.asyncio
@pytest.mark.parametrize("skew_ms", [-6000, 2000], ids=["too-old", "from-the-future"])
async def test_an_order_stamped_outside_its_recv_window_is_refused_and_not_placed(still, skew_ms):
    stamp = int(time.time() * 1000) + skew_ms

    status, body = await order(
        still, quantity="0.1", price="100", newClientOrderId="c-3", timestamp=stamp
    )

    assert (status, body["code"]) == (400, -1021)
    assert still.venues["binance"].orders == {}


@pytest.mark.asyncio
async def test_depth_of_a_symbol_the_venue_does_not_list_is_refused(still):
    status, body = await http(still.urls["binance_rest"] + "/api/v3/depth?symbol=DOGEUSDT")

    assert (status, body["code"]) == (400, -1121)
