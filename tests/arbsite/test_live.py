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
from arbsite.access import OPERATE, VIEW
from arbsite.asgi import application
from arbsite.channel_layer import unbundled
from arbsite.pages.fragments import TOPICS, Fragment
from arbsite.roles import TRADER, VIEWER
from markets import notices
from markets.bookcache import publish_book
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    OpportunityFactory,
    desk_user_without_trades,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_live_state():
    yield
    # The render thread holds its own database connection; let the test database go.
    live._RENDERER.submit(connections.close_all).result()


async def announce(kind: str, key: str = "") -> None:
    """One notice of `kind` on the real channel layer, as any publisher sends it."""
    await get_channel_layer().group_send(notices.group(kind, key), notices.notice(kind, key))


def spreads() -> Fragment:
    return next(f for _, f in TOPICS["spreads"])


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


async def test_viewer_follows_only_the_topics_its_role_may_see(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)

    audience, wanted = await live.subscriptions(
        user, ["desk", "spreads:BTC-USD", "risk-status", "nope", "depth"]
    )

    assert audience == VIEW
    followed = {group: [(f.topic, key) for f, key in pairs] for group, pairs in wanted.items()}
    assert followed == {
        "live.health": [("desk", "")],
        "live.opportunities": [("desk", "")],  # the status bar counts them for the tab title
        "live.market.BTC-USD": [("spreads", "BTC-USD")],
    }


async def test_malformed_topics_are_ignored_before_they_name_a_group(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    malformed = [
        "spreads:" + "X" * 92,
        "spreads:BTC/USD",
        "spreads:BTC\x00USD",
        "spreads:",
        "desk:",
    ]

    _, wanted = await live.subscriptions(user, [*malformed, "spreads:ETH-USD"])

    assert set(wanted) == {"live.market.ETH-USD"}


async def test_a_topic_shown_after_two_kinds_of_change_follows_both(user_with_role):
    user = await database_sync_to_async(user_with_role)(TRADER)

    audience, wanted = await live.subscriptions(user, ["pnl"])

    assert audience == OPERATE
    assert set(wanted) == {"live.trades", "live.portfolio"}


async def test_viewer_receives_the_market_push_of_its_subscribed_market(user_with_role):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD,health")
    assert (await comm.connect())[0]
    await database_sync_to_async(book)("kraken", "100.5", "100.6")

    await announce(notices.MARKET, "BTC-USD")

    html = await comm.receive_from(timeout=3)
    assert 'id="spread-BTC-USD"' in html and 'hx-swap-oob="true"' in html
    assert "100.5" in html
    assert await drain(comm, 0.2) == []  # the depth fragment is for market pages only
    await comm.disconnect()


@pytest.mark.parametrize(("role", "sees_execute"), [(VIEWER, False), (TRADER, True)])
async def test_opportunity_push_shows_the_execute_control_only_to_traders(
    user_with_role, role, sees_execute
):
    await database_sync_to_async(OpportunityFactory)()
    user = await database_sync_to_async(user_with_role)(role)
    comm = communicator(user, "opportunities")
    assert (await comm.connect())[0]

    await announce(notices.OPPORTUNITIES)

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
    stop, pump = asyncio.Event(), notices.Pump(interval_s=0.2)
    running = asyncio.create_task(pump.run(stop))

    started = time.monotonic()
    for i in range(1000):
        book("kraken", f"{100 + i}.5", f"{101 + i}.5")
        pump.mark(notices.MARKET, "BTC-USD")
        if i % 10 == 0:
            await asyncio.sleep(0.002)
    messages = await drain(comm, 1.2)
    stop.set()
    await running
    took = time.monotonic() - started

    # At most the leading edge and one push per interval after it, however slow the machine
    # (a loaded one took longer over the burst and had 9 intervals to push in).
    assert 1 <= len(messages) <= 1 + took / 0.2 + 1
    assert "1099.5" in messages[-1]
    await comm.disconnect()


async def test_a_failed_send_is_logged_and_the_pump_keeps_pushing(
    user_with_role, caplog, monkeypatch
):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD")
    assert (await comm.connect())[0]
    # The Redis layer sends a batch at once, from the pump's own thread and layer instance
    # (markets.notices.Sender); the in-memory one singly: the class's method fails once.
    layer, failures = type(get_channel_layer()), ["redis went away"]
    if hasattr(layer, "send_bundled"):  # blocking, on the sender's thread
        send_bundled = layer.send_bundled

        def flaky_bundle(self, *args) -> None:
            if failures:
                raise ConnectionError(failures.pop())
            send_bundled(self, *args)

        monkeypatch.setattr(layer, "send_bundled", flaky_bundle)
    else:
        group_send = layer.group_send

        async def flaky_send(self, *args) -> None:
            if failures:
                raise ConnectionError(failures.pop())
            await group_send(self, *args)

        monkeypatch.setattr(layer, "group_send", flaky_send)
    stop, pump = asyncio.Event(), notices.Pump(interval_s=0.1)
    running = asyncio.create_task(pump.run(stop))
    try:
        pump.mark(notices.MARKET, "BTC-USD")
        await asyncio.sleep(0.3)
        pump.mark(notices.MARKET, "BTC-USD")
        messages = await drain(comm, 0.5)
    finally:
        stop.set()
        await running

    assert "redis went away" in caplog.text
    assert any('id="spread-BTC-USD"' in html for html in messages)
    await comm.disconnect()


async def test_the_render_thread_checks_its_connection_once_a_second_not_per_fragment(
    monkeypatch,
):
    checks = []
    monkeypatch.setattr(live, "close_old_connections", lambda: checks.append(time.monotonic()))
    monkeypatch.setattr(live, "_checked", float("-inf"))

    for n in range(4):  # one push's fragments
        assert await live._once(("test", n), abs, n) == n
    monkeypatch.setattr(live, "_checked", live._checked - live.CHECK_CONNECTIONS_S)
    await live._once(("test", "later"), lambda: None)

    assert len(checks) == 2


def _break_the_connection() -> None:
    connections["default"].connection.close()  # as a restarted server or a dropped link would


async def test_a_render_connection_that_broke_is_replaced_at_the_next_check(
    user_with_role, monkeypatch
):
    await database_sync_to_async(two_venues)()
    assert await live.rendered(spreads(), "BTC-USD", VIEW, time.time())  # connected
    await asyncio.wrap_future(live._RENDERER.submit(_break_the_connection))
    # Within the second after a check, however slow this machine is: no check is due.
    monkeypatch.setattr(live, "_checked", float("inf"))

    failed = await live.rendered(spreads(), "BTC-USD", VIEW, time.time())
    monkeypatch.setattr(live, "_checked", float("-inf"))  # a second on: the next check is due
    html = await live.rendered(spreads(), "BTC-USD", VIEW, time.time())

    assert failed is None  # logged; the pages keep their fragment
    assert 'id="spread-BTC-USD"' in html


async def test_a_fragment_that_fails_to_render_is_skipped_and_the_page_stays(
    user_with_role, monkeypatch
):
    await database_sync_to_async(two_venues)()
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "spreads:BTC-USD")
    assert (await comm.connect())[0]
    render = live.render
    monkeypatch.setattr(live, "render", lambda *args: 1 / 0)
    await announce(notices.MARKET, "BTC-USD")
    assert await drain(comm, 0.3) == []

    monkeypatch.setattr(live, "render", render)
    await announce(notices.MARKET, "BTC-USD")

    assert 'id="spread-BTC-USD"' in await comm.receive_from(timeout=3)
    await comm.disconnect()


async def test_pushed_fragments_carry_their_publish_time(user_with_role):
    await database_sync_to_async(two_venues)()
    before = time.time()
    notice = notices.notice(notices.MARKET, "BTC-USD")

    html = await database_sync_to_async(live.render)(
        spreads(), "BTC-USD", VIEW, notice["published"]
    )

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
    render = live.render
    monkeypatch.setattr(
        live, "render", lambda *args: renders.append(args[0].topic) or render(*args)
    )

    await announce(notices.MARKET, "BTC-USD")

    received = [await comm.receive_from(timeout=3) for comm in comms]
    assert len(set(received)) == 1 and 'id="spread-BTC-USD"' in received[0]
    assert renders == ["spreads"]  # once for five pages; no page follows depth: never rendered
    for comm in comms:
        await comm.disconnect()


async def test_a_trade_change_pushes_the_trades_and_pnl_fragments_after_commit(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    comm = communicator(user, "trades,pnl")
    assert (await comm.connect())[0]

    before_commit = await database_sync_to_async(_publish_in_a_transaction)(comm)

    messages = await drain(comm, 1.0)
    assert before_commit is True
    assert len(messages) == 1  # the two fragments of one notice, in one message
    assert 'id="recent-trades"' in messages[0] and 'id="pnl"' in messages[0]
    await comm.disconnect()


def _publish_in_a_transaction(comm: WebsocketCommunicator) -> bool:
    """Publish a trades notice inside a transaction; True when nothing arrived before commit."""
    from asgiref.sync import async_to_sync
    from django.db import transaction

    with transaction.atomic():
        notices.publish(notices.TRADES)
        return async_to_sync(comm.receive_nothing)(timeout=0.2)


async def test_a_page_that_may_not_see_trades_asks_for_them_and_hears_only_the_pnl(
    user_with_role,
):
    blind = await database_sync_to_async(desk_user_without_trades)()
    comm = communicator(blind, "trades,pnl")
    assert (await comm.connect())[0]

    await database_sync_to_async(notices.publish)(notices.TRADES)

    messages = await drain(comm, 1.0)
    assert messages and all('id="pnl"' in html for html in messages)
    assert not any('id="recent-trades"' in html for html in messages)
    await comm.disconnect()


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


async def listening(kind: str, key: str = "") -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(notices.group(kind, key), channel)
    return channel


async def received(channel: str, wait_s: float) -> list[dict]:
    found = []
    while True:
        try:
            found += unbundled(await asyncio.wait_for(get_channel_layer().receive(channel), wait_s))
        except TimeoutError:
            return found


async def test_the_first_change_after_a_quiet_interval_is_sent_without_waiting_for_a_tick():
    channel = await listening(notices.MARKET, "BTC-USD")
    stop, pump = asyncio.Event(), notices.Pump(interval_s=600)  # a tick that would never come
    running = asyncio.create_task(pump.run(stop))

    pump.mark(notices.MARKET, "BTC-USD")
    first = unbundled(await asyncio.wait_for(get_channel_layer().receive(channel), 10))[0]
    stop.set()
    await running

    assert first["kind"] == notices.MARKET and first["key"] == "BTC-USD"


async def test_changes_within_the_interval_after_a_send_go_out_once_at_its_end():
    channel = await listening(notices.MARKET, "BTC-USD")
    stop, pump = asyncio.Event(), notices.Pump(interval_s=0.5)
    running = asyncio.create_task(pump.run(stop))

    pump.mark(notices.MARKET, "BTC-USD")  # the leading edge
    await asyncio.wait_for(get_channel_layer().receive(channel), 10)
    for _ in range(500):  # all within the interval that follows: one trailing send
        pump.mark(notices.MARKET, "BTC-USD")
    sent = await received(channel, 1.5)
    stop.set()
    await running

    assert len(sent) == 1


async def test_what_was_marked_when_the_engine_stops_is_still_sent():
    channel = await listening(notices.HEALTH)
    stop, pump = asyncio.Event(), notices.Pump(interval_s=600)
    running = asyncio.create_task(pump.run(stop))
    pump.mark(notices.HEALTH)
    await asyncio.wait_for(get_channel_layer().receive(channel), 10)

    pump.mark(notices.HEALTH)  # inside the long interval
    stop.set()
    await running

    assert len(await received(channel, 0.3)) == 1
