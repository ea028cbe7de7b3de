"""`run_arbitrage --replay`: a recording played into the live engine, over and over."""

import asyncio
from decimal import Decimal
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command
from django.db import connections

from arbsite.channel_layer import unbundled
from markets import notices
from markets.recording import read_records
from markets.venues import VenueConfig
from tests.recordings import REPLAY_SMALL
from tests.trading.engine.test_engine import wait_for_async
from trading.engine.engine import Engine
from trading.engine.pipeline import Limits
from trading.engine.recorded import recorded_connections
from trading.engine.replay import Replay
from trading.engine.runner import EngineOptions, run_engine
from trading.management.commands import run_arbitrage

RECORDING = str(REPLAY_SMALL)
VENUE_SYMBOLS = {
    "coinbase": {"BTC-USD": "BTC-USD", "ETH-USD": "ETH-USD"},
    "kraken": {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"},
    "binance": {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"},
}


def venues() -> list[VenueConfig]:
    return [
        VenueConfig(
            slug,
            ws_url="",
            taker_fee=Decimal("0.001"),
            symbols=symbols,
            lots=dict.fromkeys(symbols, Decimal("0.00001")),
        )
        for slug, symbols in VENUE_SYMBOLS.items()
    ]


@pytest.mark.asyncio
async def test_each_pass_replays_every_frame_cleanly_and_applies_every_book_update():
    # What one pass must apply per venue: the same file through `replay`'s path once.
    reference = Replay(venues(), Limits(max_book_age_s=60))
    reference.run(read_records(RECORDING), lambda event: None)
    per_pass = {venue: feed.stats for venue, feed in reference.pipeline.feeds.items()}
    engine = Engine(venues(), limits=Limits(max_book_age_s=60), heartbeat_every_s=60)
    engine.connections = recorded_connections(
        RECORDING, engine.pipeline.feeds, engine.on_books_changed
    )
    task = asyncio.create_task(engine.run())

    async def three_passes() -> bool:
        return min(c.passes for c in engine.connections) >= 3

    try:
        assert await wait_for_async(three_passes, 10)
    finally:
        engine.stop()
        await asyncio.wait_for(task, 5)

    for connection in engine.connections:
        stats, once = connection.feed.stats, per_pass[connection.feed.venue]
        assert stats.frames >= 3 * once.frames > 0
        assert stats.book_updates >= 3 * once.book_updates > 0
        assert (stats.gaps, stats.checksum_failed, stats.malformed) == (0, 0, 0)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("debug_desk")
async def test_the_engine_replaying_a_recording_writes_rows_and_pushes_to_the_pages():
    from trading.models import Opportunity

    await sync_to_async(call_command)("seed_demo", stdout=StringIO())
    await sync_to_async(_no_auto_execution)()
    layer = get_channel_layer()
    page = await layer.new_channel()
    await layer.group_add(notices.group(notices.MARKET, "BTC-USD"), page)
    stop = asyncio.Event()
    engine = asyncio.create_task(run_engine(EngineOptions(replay=RECORDING), stop))

    async def rows_written() -> bool:
        return await sync_to_async(Opportunity.objects.exists)()

    try:
        notice = unbundled(await asyncio.wait_for(layer.receive(page), 10))[0]
        assert await wait_for_async(rows_written, 10)
    finally:
        stop.set()
        await asyncio.wait_for(engine, 10)
        await layer.group_discard(notices.group(notices.MARKET, "BTC-USD"), page)
        await sync_to_async(connections.close_all)()  # the engine's thread keeps its connection

    assert (notice["type"], notice["kind"], notice["key"]) == ("live.notice", "market", "BTC-USD")


def _no_auto_execution() -> None:
    from risk.models import RiskProfile

    RiskProfile.objects.update(auto_execute=False)


def test_replay_takes_the_place_of_the_venues():
    with pytest.raises(CommandError, match="no --simulate or --record"):
        call_command("run_arbitrage", "--replay", RECORDING, "--simulate")


def test_engine_cpus_pins_the_engine_before_it_starts(monkeypatch):
    pinned, served = [], []
    monkeypatch.setenv("ENGINE_CPUS", "1,3")
    monkeypatch.setattr(
        run_arbitrage.os, "sched_setaffinity", lambda pid, cpus: pinned.append(cpus)
    )

    async def serve(self, options) -> None:
        served.append(list(pinned))

    monkeypatch.setattr(run_arbitrage.Command, "serve", serve)

    call_command("run_arbitrage")

    assert served == [[{1, 3}]]
