"""The simulated KuCoin over real loopback sockets, with the real feed behind the connection
manager: the token handshake, calibration, a dropped message, token expiry, pings."""

import asyncio
import json
from dataclasses import replace

import pytest
from websockets.asyncio.client import connect

from markets.connection import Connection
from markets.simulator.server import VenueSimulator
from markets.venues.kucoin.feed import KucoinFeed
from tests.markets.simulated import FAST, frames, http, kucoin


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def kucoin_feed(sim: VenueSimulator) -> KucoinFeed:
    symbols = {"BTC-USD": "BTC-USDT", "ETH-USD": "ETH-USDT"}
    return KucoinFeed("kucoin", sim.urls["kucoin"], symbols, sim.urls["kucoin_rest"])


async def running(feed: KucoinFeed) -> tuple[Connection, asyncio.Task]:
    connection = Connection(feed, backoff_base=0.05)
    task = asyncio.create_task(connection.run())
    await until(lambda: connection.state == "live" and all(b.valid for b in feed.books.values()))
    return connection, task


async def stopped(connection: Connection, task: asyncio.Task) -> None:
    connection.stop()
    await task


@pytest.mark.asyncio
async def test_the_feed_shakes_hands_subscribes_and_keeps_every_book_in_sequence(sim):
    feed = kucoin_feed(sim)
    connection, task = await running(feed)
    updates = feed.stats.book_updates
    await until(lambda: feed.stats.book_updates > updates + 10)
    await stopped(connection, task)

    assert feed.stats.gaps == feed.stats.malformed == 0
    assert feed.url.startswith(sim.urls["kucoin"] + "?token=")
    assert feed.stats.resyncs == 2  # one snapshot per book


@pytest.mark.asyncio
async def test_the_book_matches_the_venue_after_calibration(sim):
    feed = kucoin_feed(sim)
    connection, task = await running(feed)
    await asyncio.sleep(0.3)
    venue = sim.venues["kucoin"].books["BTC-USDT"]
    book = feed.books["BTC-USD"]
    try:
        await until(lambda: book.sequence == sim.venues["kucoin"].sequences["BTC-USDT"])
        top = {p * venue.listing.tick: q * venue.listing.lot for p, q in venue.book.bids.items()}
        assert dict(book.bids()) == top
    finally:
        await stopped(connection, task)


@pytest.mark.asyncio
async def test_a_dropped_message_resyncs_the_book_on_the_same_socket(sim):
    feed = kucoin_feed(sim)
    connection, task = await running(feed)
    sim.inject("kucoin", "gap", symbol="BTC-USD")
    await until(lambda: feed.stats.gaps == 1)
    await until(lambda: feed.books["BTC-USD"].valid)
    await stopped(connection, task)

    assert feed.stats.resyncs == 3 and connection.connections == 1


@pytest.mark.asyncio
async def test_an_expired_token_closes_the_socket_and_the_feed_returns_on_a_new_token():
    timing = replace(FAST, kucoin_token_ttl=0.8)
    async with VenueSimulator(seed=7, timing=timing) as sim:
        feed = kucoin_feed(sim)
        connection, task = await running(feed)
        first_url = feed.url
        await until(lambda: connection.connections == 2 and connection.state == "live")
        await until(lambda: all(b.valid for b in feed.books.values()))
        await stopped(connection, task)

    assert feed.url != first_url
    assert any("token is expired" in error for error in feed.stats.errors)


@pytest.mark.asyncio
async def test_an_unknown_token_is_refused_with_an_error_and_closed(sim):
    ws = await connect(sim.urls["kucoin"] + "?token=forged&connectId=x")
    received = [json.loads(f) async for f in ws]  # ends when the venue closes the socket

    assert [(m["type"], m["code"]) for m in received] == [("error", 401)]
    assert ws.close_reason == "token is invalid"


@pytest.mark.asyncio
async def test_pings_are_answered_and_unknown_symbols_refused(sim):
    ws = await kucoin(sim, "DOGE-USDT")
    await ws.send('{"id":"7","type":"ping"}')
    received = [json.loads(f) for f in await frames(ws, 0.3)]
    await ws.close()

    assert {"id": "7", "type": "pong"} in received
    assert [m["code"] for m in received if m["type"] == "error"] == [404]


@pytest.mark.asyncio
async def test_a_client_that_never_pings_is_closed_after_interval_and_timeout():
    timing = replace(FAST, kucoin_ping_interval=0.2, kucoin_ping_timeout=0.1)
    async with VenueSimulator(seed=7, timing=timing) as sim:
        ws = await kucoin(sim, "BTC-USDT")
        async with asyncio.timeout(2):
            async for _ in ws:  # ends when the venue closes the socket
                pass

        assert ws.close_reason == "ping timeout"


@pytest.mark.asyncio
async def test_the_rest_book_is_consistent_with_the_stream_sequence(sim):
    status, body = await http(
        sim.urls["kucoin_rest"] + "/api/v1/market/orderbook/level2_20?symbol=BTC-USDT"
    )

    assert status == 200 and body["code"] == "200000"
    assert len(body["data"]["bids"]) == 20
    assert int(body["data"]["sequence"]) <= sim.venues["kucoin"].sequences["BTC-USDT"]


@pytest.mark.asyncio
async def test_a_refused_handshake_counts_as_a_failed_attempt_and_is_retried(sim):
    sim.inject("kucoin", "refuse", seconds=0.4)
    feed = kucoin_feed(sim)
    connection = Connection(feed, backoff_base=0.05)
    task = asyncio.create_task(connection.run())
    try:
        await until(lambda: connection.reconnects >= 1)
        assert connection.connections == 0  # no socket without a token
        await until(lambda: connection.state == "live")
    finally:
        await stopped(connection, task)
