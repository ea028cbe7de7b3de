"""The live pushes: who joins which group, what they receive, and how a burst is coalesced."""

import asyncio
import time
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from arbsite import live
from arbsite.asgi import application
from arbsite.roles import TRADER, VIEWER
from markets.bookcache import publish_book
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory, OpportunityFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_live_state():
    live._dirty.clear()
    yield
    live._dirty.clear()
    # The pump's render thread holds its own database connection; let the test database go.
    live._RENDERER.submit(connections.close_all).result()


def communicator(user, topics: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/live/?topics={topics}", headers=[(b"origin", b"http://testserver")]
    )
    comm.scope["user"] = user
    return comm


def book(venue: str, bid: str, ask: str) -> None:
    publish_book(
        {
            "venue": venue,
            "market": "BTC-USD",
            "bids": [(Decimal(bid), Decimal("1.5"))],
            "asks": [(Decimal(ask), Decimal("2"))],
            "sequence": 1,
            "exchange_ts": None,
            "received_ts": time.time(),
            "valid": True,
        }
    )


def two_venues() -> None:
    market = MarketFactory(symbol="BTC-USD")
    ListingFactory(market=market, exchange=ExchangeFactory(slug="kraken"))
    ListingFactory(market=market, exchange=ExchangeFactory(slug="coinbase"))


async def drain(comm: WebsocketCommunicator, seconds: float) -> list[str]:
    """Every message that arrives within `seconds` (receive_from's timeout would end the app)."""
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not await comm.receive_nothing(timeout=min(left, 0.05), interval=0.01):
            messages.append(await comm.receive_from())
    return messages


async def test_user_without_the_desk_permission_is_refused_with_4403(user_with_role):
    user = await database_sync_to_async(user_with_role)(None)
    comm = communicator(user, "desk")

    connected, code = await comm.connect()

    assert (connected, code) == (False, 4403)
    await comm.disconnect()


async def test_viewer_joins_only_the_topics_its_role_may_see(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)

    groups = await live.groups_for(
        user, ["desk", "spreads:BTC-USD", "risk-status", "nope", "depth"]
    )

    assert groups == ["desk.view", "spreads.BTC-USD"]


async def test_viewer_receives_the_market_push_of_its_subscribed_market(user_with_role):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD,health")
    assert (await comm.connect())[0]
    await database_sync_to_async(book)("kraken", "100.5", "100.6")

    for group, notice in live.notices("market", "BTC-USD"):
        await get_channel_layer().group_send(group, notice)

    html = await comm.receive_from(timeout=3)
    assert 'id="spread-BTC-USD"' in html and 'hx-swap-oob="true"' in html
    assert "100.5" in html
    assert await drain(comm, 0.2) == []  # the depth push went to the market page's group only
    await comm.disconnect()


@pytest.mark.parametrize(("role", "sees_execute"), [(VIEWER, False), (TRADER, True)])
async def test_opportunity_push_shows_the_execute_control_only_to_traders(
    user_with_role, role, sees_execute
):
    await database_sync_to_async(OpportunityFactory)()
    user = await database_sync_to_async(user_with_role)(role)
    comm = communicator(user, "opportunities")
    assert (await comm.connect())[0]

    for group, notice in live.notices("opportunities"):
        await get_channel_layer().group_send(group, notice)

    messages = await drain(comm, 0.5)
    assert len(messages) == 1
    assert 'id="open-opportunities"' in messages[0]
    assert ("Execute…" in messages[0]) is sees_execute
    await comm.disconnect()


async def test_a_burst_of_changes_is_coalesced_into_a_few_pushes_of_the_latest_state(
    user_with_role,
):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD")
    assert (await comm.connect())[0]
    stop = asyncio.Event()
    pump = asyncio.create_task(live.pump(stop, interval_s=0.2))

    for i in range(1000):
        book("kraken", f"{100 + i}.5", f"{101 + i}.5")
        live.mark_dirty("market", "BTC-USD")
        if i % 10 == 0:
            await asyncio.sleep(0.002)
    messages = await drain(comm, 1.2)
    stop.set()
    await pump

    assert 1 <= len(messages) <= 8
    assert "1099.5" in messages[-1]
    await comm.disconnect()


async def test_a_failed_send_is_logged_and_the_pump_keeps_pushing(user_with_role, caplog):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD")
    assert (await comm.connect())[0]
    layer = get_channel_layer()
    send, failures = layer.group_send, ["redis went away"]

    async def flaky_send(group: str, message: dict) -> None:
        if failures:
            raise ConnectionError(failures.pop())
        await send(group, message)

    stop = asyncio.Event()
    pump = asyncio.create_task(live.pump(stop, interval_s=0.1))
    layer.group_send = flaky_send
    try:
        live.mark_dirty("market", "BTC-USD")
        await asyncio.sleep(0.3)
        live.mark_dirty("market", "BTC-USD")
        messages = await drain(comm, 0.5)
    finally:
        del layer.group_send
        stop.set()
        await pump

    assert "redis went away" in caplog.text
    assert any('id="spread-BTC-USD"' in html for html in messages)
    await comm.disconnect()


async def test_a_fragment_that_fails_to_render_is_skipped_and_the_page_stays(
    user_with_role, monkeypatch
):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD")
    assert (await comm.connect())[0]
    render = live.render_notice
    monkeypatch.setattr(live, "render_notice", lambda notice: 1 / 0)
    for group, notice in live.notices("market", "BTC-USD"):
        await get_channel_layer().group_send(group, notice)
    assert await drain(comm, 0.3) == []

    monkeypatch.setattr(live, "render_notice", render)
    for group, notice in live.notices("market", "BTC-USD"):
        await get_channel_layer().group_send(group, notice)

    assert 'id="spread-BTC-USD"' in await comm.receive_from(timeout=3)
    await comm.disconnect()


async def test_pushed_fragments_carry_their_publish_time(user_with_role):
    await database_sync_to_async(two_venues)()
    before = time.time()
    (_, notice), _depth = live.notices("market", "BTC-USD")

    html = await database_sync_to_async(live.render_notice)(notice)

    stamp = float(html.split('data-published="', 1)[1].split('"', 1)[0])
    assert before <= stamp <= time.time()
    assert stamp == pytest.approx(notice["published"], abs=1e-6)


async def test_a_push_is_rendered_once_for_every_page_of_the_process(user_with_role, monkeypatch):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comms = [communicator(user, "spreads:BTC-USD") for _ in range(5)]
    for comm in comms:
        assert (await comm.connect())[0]
    renders = []
    render = live.render_notice
    monkeypatch.setattr(live, "render_notice", lambda notice: renders.append(1) or render(notice))

    for group, notice in live.notices("market", "BTC-USD"):
        await get_channel_layer().group_send(group, notice)

    received = [await comm.receive_from(timeout=3) for comm in comms]
    assert len(set(received)) == 1 and 'id="spread-BTC-USD"' in received[0]
    assert len(renders) == 1  # the depth notice went to a group with no page: never rendered
    for comm in comms:
        await comm.disconnect()


async def test_a_trade_change_pushes_the_trades_and_pnl_fragments_after_commit(monkeypatch):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("trades", channel)
    await layer.group_add("pnl", channel)
    sent = []
    send = live._send
    monkeypatch.setattr(live, "_send", lambda kind, key: sent.append(kind) or send(kind, key))

    sent_before_commit = await database_sync_to_async(_trade_changes_in_a_transaction)(sent)

    first, second = await _poll(layer, channel, 2), await _poll(layer, channel, 2)
    assert sent_before_commit == [] and sent == ["trades"]
    assert {first["topic"], second["topic"]} == {"trades", "pnl"}


def _trade_changes_in_a_transaction(sent: list[str]) -> list[str]:
    from django.db import transaction

    from trading.models import Trade
    from trading.signals import trade_changed

    with transaction.atomic():
        trade_changed.send(sender=Trade, trade_id=1)
        return list(sent)


async def _poll(layer, channel: str, seconds: float = 0.1) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), seconds)
    except TimeoutError:
        return None


async def test_throwing_the_kill_switch_pushes_the_desk_status_to_open_pages(user_with_role):
    from risk.services import throw_kill_switch

    viewer = await database_sync_to_async(user_with_role)(VIEWER)
    trader = await database_sync_to_async(user_with_role)(TRADER)
    comm = communicator(viewer, "desk")
    assert (await comm.connect())[0]

    await database_sync_to_async(throw_kill_switch)(reason="venue outage", user=trader)

    messages = await drain(comm, 1.0)
    assert any('id="desk-status"' in html and "Kill switch ON" in html for html in messages)
    await comm.disconnect()


async def test_risk_manager_admin_panel_receives_the_risk_status_push(user_with_role):
    from arbsite.roles import RISK_MANAGER
    from risk.services import trip_kill_switch

    user = await database_sync_to_async(user_with_role)(RISK_MANAGER)
    user.is_staff = True
    await database_sync_to_async(user.save)()
    comm = communicator(user, "risk-status")
    assert (await comm.connect())[0]

    await database_sync_to_async(trip_kill_switch)(reason="daily loss limit reached")

    messages = await drain(comm, 1.0)
    assert any('id="risk-status"' in html and "daily loss limit" in html for html in messages)
    await comm.disconnect()
