"""The simulated venues over real loopback sockets, checked with plain websocket clients."""

import asyncio
import itertools
import json
import urllib.error
import urllib.request
import zlib
from decimal import Decimal

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from markets.simulator import Timing, VenueSimulator

FAST = Timing(
    heartbeat=0.2,
    subscribe_timeout=0.5,
    dislocation_every=(0.3, 0.6),
    dislocation_for=(0.4, 0.8),
)


@pytest_asyncio.fixture
async def sim():
    async with VenueSimulator(seed=7, timing=FAST) as simulator:
        yield simulator


async def frames(ws: ClientConnection, seconds: float) -> list[str]:
    """Every frame that arrives within `seconds`."""
    received = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            received.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return received


async def http(url: str, method: str = "GET") -> tuple[int, dict]:
    def fetch() -> tuple[int, dict]:
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    return await asyncio.to_thread(fetch)


async def coinbase(sim: VenueSimulator, *products: str) -> ClientConnection:
    ws = await connect(sim.urls["coinbase"], max_size=None)
    subscribe = {"type": "subscribe", "product_ids": list(products), "channel": "level2"}
    await ws.send(json.dumps(subscribe))
    return ws


async def kraken(sim: VenueSimulator, depths: dict[str, int]) -> ClientConnection:
    ws = await connect(sim.urls["kraken"])
    for req_id, (symbol, depth) in enumerate(depths.items()):
        params = {"channel": "book", "symbol": [symbol], "depth": depth, "snapshot": True}
        await ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": req_id}))
    return ws


async def binance(sim: VenueSimulator) -> ClientConnection:
    return await connect(sim.urls["binance"] + "/stream?streams=btcusdt@depth@100ms")


CONNECT = {
    "coinbase": lambda sim: coinbase(sim, "BTC-USD"),
    "kraken": lambda sim: kraken(sim, {"BTC/USD": 10}),
    "binance": binance,
}


class KrakenBook:
    """Test-side Kraken book: wire lexemes kept as sent, truncated to depth, CRC32 recomputed."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}

    def apply(self, data: dict) -> None:
        for name, side in self.sides.items():
            for level in data[name]:
                price, qty = level["price"], level["qty"]
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = (price, qty)
            kept = self.ordered(name)[: self.depth]
            self.sides[name] = {Decimal(p): (p, q) for p, q in kept}

    def ordered(self, name: str) -> list[tuple[str, str]]:
        side = self.sides[name]
        return [side[p] for p in sorted(side, reverse=name == "bids")]

    def checksum(self) -> int:
        text = ""
        for price, qty in self.ordered("asks")[:10] + self.ordered("bids")[:10]:
            text += price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")
        return zlib.crc32(text.encode()) & 0xFFFFFFFF


def kraken_books(raw_frames: list[str], depths: dict[str, int]) -> tuple[dict, int, int]:
    """Replay book frames; return the books, how many checksums matched and how many did not."""
    books = {symbol: KrakenBook(depth) for symbol, depth in depths.items()}
    good = bad = 0
    for raw in raw_frames:
        message = json.loads(raw, parse_float=str, parse_int=str)
        if message.get("channel") != "book":
            continue
        for data in message["data"]:
            book = books[data["symbol"]]
            if message["type"] == "snapshot":
                book.sides = {"bids": {}, "asks": {}}
            book.apply(data)
            if book.checksum() == int(data["checksum"]):
                good += 1
            else:
                bad += 1
    return books, good, bad


@pytest.mark.asyncio
async def test_coinbase_sequence_is_contiguous_from_zero_and_snapshot_comes_first(sim):
    ws = await coinbase(sim, "BTC-USD", "ETH-USD")
    await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats"}))
    messages = [json.loads(m) for m in await frames(ws, 1.0)]
    await ws.close()

    assert [m["sequence_num"] for m in messages] == list(range(len(messages)))
    assert messages[0]["channel"] == "subscriptions"
    assert messages[-1]["channel"] != "subscriptions"
    acks = [m["events"][0]["subscriptions"] for m in messages if m["channel"] == "subscriptions"]
    assert acks[-1] == {"level2": ["BTC-USD", "ETH-USD"], "heartbeats": ["heartbeats"]}
    for product in ("BTC-USD", "ETH-USD"):
        kinds = [
            e["type"]
            for m in messages
            if m["channel"] == "l2_data"
            for e in m["events"]
            if e["product_id"] == product
        ]
        assert kinds[0] == "snapshot"
        assert set(kinds[1:]) == {"update"}
    counters = [
        m["events"][0]["heartbeat_counter"] for m in messages if m["channel"] == "heartbeats"
    ]
    assert counters and counters == list(range(counters[0], counters[0] + len(counters)))
    assert all("client_id" not in m for m in messages)


@pytest.mark.asyncio
async def test_coinbase_gap_fault_skips_one_sequence_number(sim):
    ws = await coinbase(sim, "BTC-USD")
    received = await frames(ws, 0.3)
    sim.inject("coinbase", "gap")
    received += await frames(ws, 0.6)
    await ws.close()

    numbers = [json.loads(m)["sequence_num"] for m in received]
    steps = [b - a for a, b in itertools.pairwise(numbers)]
    assert sorted(steps)[-1] == 2
    assert steps.count(2) == 1


@pytest.mark.asyncio
async def test_coinbase_closes_a_connection_that_never_subscribes(sim):
    ws = await connect(sim.urls["coinbase"])
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), FAST.subscribe_timeout + 1)


@pytest.mark.asyncio
async def test_kraken_every_checksum_verifies_and_depth_is_respected(sim):
    depths = {"BTC/USD": 10, "ETH/USD": 25}
    ws = await kraken(sim, depths)
    received = await frames(ws, 1.5)
    await ws.close()

    books, good, bad = kraken_books(received, depths)
    assert bad == 0
    assert good > 10
    for symbol, depth in depths.items():
        assert len(books[symbol].sides["bids"]) == depth
        assert len(books[symbol].sides["asks"]) == depth
    updates = [json.loads(m) for m in received if '"type":"update"' in m]
    assert all("timestamp" in u["data"][0] for u in updates)


@pytest.mark.asyncio
async def test_kraken_bad_checksum_fault_sends_exactly_one_wrong_checksum(sim):
    depths = {"BTC/USD": 10}
    ws = await kraken(sim, depths)
    received = await frames(ws, 0.3)
    sim.inject("kraken", "bad_checksum")
    received += await frames(ws, 0.8)
    await ws.close()

    assert kraken_books(received, depths)[2] == 1


@pytest.mark.asyncio
async def test_kraken_acks_per_symbol_rejects_unknown_pairs_and_answers_ping(sim):
    ws = await connect(sim.urls["kraken"])
    status = json.loads(await ws.recv())
    params = {"channel": "book", "symbol": ["BTC/USD", "XBT/USD"], "depth": 10}
    await ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": 4}))
    await ws.send(json.dumps({"method": "ping", "req_id": 9}))
    replies = [json.loads(m) for m in await frames(ws, 0.3) if '"method"' in m]
    await ws.close()

    assert status["channel"] == "status"
    assert status["data"][0]["system"] == "online"
    acks = [r for r in replies if r["method"] == "subscribe"]
    assert [(a["success"], a["req_id"]) for a in acks] == [(True, 4), (False, 4)]
    assert acks[1]["symbol"] == "XBT/USD"
    assert {"method": "pong", "req_id": 9}.items() <= replies[-1].items()


@pytest.mark.asyncio
async def test_kraken_resubscribe_after_unsubscribe_gives_a_fresh_verifying_snapshot(sim):
    depths = {"BTC/USD": 25}
    ws = await kraken(sim, depths)
    await frames(ws, 0.3)
    params = {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}
    await ws.send(json.dumps({"method": "unsubscribe", "params": params}))
    await ws.send(json.dumps({"method": "subscribe", "params": params}))
    received = await frames(ws, 0.5)
    await ws.close()

    unsubscribed = [m for m in received if '"method": "unsubscribe"' in m]
    assert json.loads(unsubscribed[0])["success"] is True
    snapshot_at = next(i for i, m in enumerate(received) if '"type":"snapshot"' in m)
    _, good, bad = kraken_books(received[snapshot_at:], depths)
    assert (good > 1, bad) == (True, 0)


@pytest.mark.asyncio
async def test_binance_rest_snapshot_and_stream_sync_without_gap(sim):
    ws = await binance(sim)
    first = json.loads(await ws.recv())["data"]
    _, snapshot = await http(sim.urls["binance_rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
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
        _, later = await http(sim.urls["binance_rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=1000")
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
@pytest.mark.parametrize("venue", ["coinbase", "kraken", "binance"])
async def test_malformed_fault_sends_exactly_one_invalid_frame(sim, venue):
    ws = await CONNECT[venue](sim)
    await frames(ws, 0.2)
    sim.inject(venue, "malformed")
    received = await frames(ws, 0.4)
    await ws.close()

    invalid = 0
    for raw in received:
        try:
            json.loads(raw)
        except ValueError:
            invalid += 1
    assert invalid == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("venue", ["coinbase", "kraken", "binance"])
async def test_drop_fault_closes_the_venues_connections(sim, venue):
    ws = await CONNECT[venue](sim)
    await frames(ws, 0.2)
    status, _ = await http(f"{sim.urls['control']}/{venue}/drop", method="POST")

    assert status == 200
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(frames(ws, 2.0), 2.5)


@pytest.mark.asyncio
async def test_refuse_fault_rejects_new_connections_then_recovers(sim):
    status, _ = await http(f"{sim.urls['control']}/kraken/refuse?seconds=0.5", method="POST")
    assert status == 200

    with pytest.raises(InvalidStatus) as refused:
        await connect(sim.urls["kraken"])
    assert refused.value.response.status_code == 503
    await asyncio.sleep(0.6)
    ws = await connect(sim.urls["kraken"])
    assert json.loads(await ws.recv())["channel"] == "status"
    await ws.close()


@pytest.mark.asyncio
async def test_stall_fault_silences_the_venue_then_resumes_in_order(sim):
    ws = await coinbase(sim, "BTC-USD")
    await frames(ws, 0.2)
    sim.inject("coinbase", "stall", seconds=0.6)
    during = await frames(ws, 0.4)
    after = [json.loads(m)["sequence_num"] for m in await frames(ws, 0.6)]
    await ws.close()

    assert during == []
    assert after and after == list(range(after[0], after[0] + len(after)))


@pytest.mark.asyncio
async def test_control_endpoint_rejects_unknown_faults(sim):
    status, _ = await http(f"{sim.urls['control']}/kraken/explode", method="POST")

    assert status == 400


@pytest.mark.asyncio
async def test_dislocation_lets_one_venues_bid_exceed_anothers_ask_by_over_50_bps(sim):
    cb = await coinbase(sim, "BTC-USD")
    kr = await kraken(sim, {"BTC/USD": 10})
    best: dict[str, tuple[Decimal, Decimal]] = {}
    books = {"coinbase": {"bid": {}, "offer": {}}, "kraken": KrakenBook(10)}

    def on_coinbase(raw: str) -> None:
        message = json.loads(raw)
        for event in message.get("events", []):
            if event.get("type") == "snapshot":
                books["coinbase"] = {"bid": {}, "offer": {}}
            for level in event.get("updates", []):
                side = books["coinbase"][level["side"]]
                side.pop(Decimal(level["price_level"]), None)
                if Decimal(level["new_quantity"]):
                    side[Decimal(level["price_level"])] = level["new_quantity"]
        if books["coinbase"]["bid"] and books["coinbase"]["offer"]:
            cb_book = books["coinbase"]
            best["coinbase"] = (max(cb_book["bid"]), min(cb_book["offer"]))

    def on_kraken(raw: str) -> None:
        message = json.loads(raw, parse_float=str, parse_int=str)
        if message.get("channel") == "book":
            book = books["kraken"]
            book.apply(message["data"][0])
            best["kraken"] = (
                Decimal(book.ordered("bids")[0][0]),
                Decimal(book.ordered("asks")[0][0]),
            )

    def widest_cross() -> Decimal:
        if len(best) < 2:
            return Decimal(0)
        (bid_a, ask_a), (bid_b, ask_b) = best.values()
        return max((bid_a - ask_b) / ask_b, (bid_b - ask_a) / ask_a) * 10_000

    async def pump(ws: ClientConnection, on_frame) -> None:
        async for raw in ws:
            on_frame(raw)
            if widest_cross() > 50:
                return

    pumps = [asyncio.create_task(pump(cb, on_coinbase)), asyncio.create_task(pump(kr, on_kraken))]
    _, pending = await asyncio.wait(pumps, timeout=8, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await cb.close()
    await kr.close()

    assert widest_cross() > 50
