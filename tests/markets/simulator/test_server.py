"""The simulator's loopback server: routing, the control endpoint, REST bodies, and the markets
it serves seen through two venues' real protocols."""

import asyncio
import json
from decimal import Decimal

import pytest
from websockets.asyncio.client import ClientConnection

from tests.markets.simulated import KrakenBook, coinbase, http, kraken, signed


@pytest.mark.asyncio
async def test_a_path_no_venue_serves_is_not_found(sim):
    venue_status, _ = await http(sim.urls["control"].replace("/control", "/bitstamp"))
    path_status, _ = await http(sim.urls["binance_rest"] + "/api/v3/nothing")

    assert (venue_status, path_status) == (404, 404)


@pytest.mark.asyncio
async def test_control_endpoint_rejects_unknown_faults(sim):
    status, body = await http(f"{sim.urls['control']}/kraken/explode", method="POST")

    assert (status, body["ok"]) == (400, False)


@pytest.mark.asyncio
async def test_control_endpoint_takes_only_post(sim):
    status, _ = await http(f"{sim.urls['control']}/kraken/drop")

    assert status == 405


@pytest.mark.asyncio
async def test_a_request_body_written_after_its_head_is_read_whole(sim):
    """A REST client may write the body in pieces: the venue must see all of it, signed."""
    sim.venues["binance"].keys["key"] = "secret"
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC"}
    order |= {"quantity": "0.00001", "price": "1.00", "newClientOrderId": "c-1"}
    body = signed(order, "secret").encode()
    head = (
        f"POST /binance/api/v3/order HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nX-MBX-APIKEY: key\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(sim.host, sim.port)
    for piece in (head.encode() + body[:20], body[20:]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.1)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()

    status_line, _, text = answer.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 200")
    assert json.loads(text)["clientOrderId"] == "c-1"
    assert sim.venues["binance"].posts == {"c-1": 1}


@pytest.mark.asyncio
async def test_best_reports_the_venues_current_top_of_book(sim):
    bid, ask = sim.best("kraken", "BTC-USD")
    book = sim.venues["kraken"].books["BTC/USD"].book

    assert bid == max(book.bids) * Decimal("0.1")
    assert ask == min(book.asks) * Decimal("0.1")
    assert bid < ask


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
