"""Notifications: which desk events are announced in what words, and which pages hear them."""

import time
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.db import connections, transaction

from arbsite import live
from arbsite.asgi import application
from arbsite.notifications import FeedWatch
from arbsite.roles import TRADER, VIEWER
from markets import notices
from markets.heartbeat import ENGINE_HEARTBEAT_KEY
from risk import alerts, services
from tests.factories import ExchangeFactory, TradeFactory, UserFactory, desk_user_without_trades
from trading.models import Trade

D = Decimal
State = Trade.State


def filled_trade(state: str = State.FILLED) -> Trade:
    return TradeFactory(state=state, realised_net_profit=None)


@pytest.mark.django_db
def test_a_closed_trade_is_announced_with_its_pnl_once_it_commits(
    heard, django_capture_on_commit_callbacks
):
    trades = heard(notices.ALERT, notices.TRADE_EVENTS)
    trade = filled_trade()

    with django_capture_on_commit_callbacks(execute=True):
        trade.advance(State.CLOSED, realised_net_profit=D("1.798"))

    [told] = trades.notices()
    assert told["text"] == f"Trade #{trade.pk} BTC-USD closed: net +1.80 USD"
    assert told["level"] == notices.SUCCESS


@pytest.mark.django_db
def test_a_losing_close_is_a_warning_with_its_sign(heard, django_capture_on_commit_callbacks):
    trades = heard(notices.ALERT, notices.TRADE_EVENTS)
    trade = filled_trade(State.HEDGED)

    with django_capture_on_commit_callbacks(execute=True):
        trade.advance(State.CLOSED, realised_net_profit=D("-1.254"))

    [told] = trades.notices()
    assert told["text"].endswith("closed: net -1.25 USD")
    assert told["level"] == notices.WARNING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "to_state", "level", "words"),
    [
        (State.SUBMITTED, State.PARTIALLY_FILLED, notices.ERROR, "a leg failed to fill completely"),
        (State.PARTIALLY_FILLED, State.HEDGED, notices.WARNING, "hedged: imbalance closed"),
        (State.PARTIALLY_FILLED, State.UNWOUND, notices.WARNING, "unwound: imbalance closed"),
        (State.SUBMITTED, State.FAILED, notices.ERROR, "failed: imbalance closed"),
    ],
)
def test_a_failed_leg_a_hedge_and_an_unwind_are_announced(
    heard, django_capture_on_commit_callbacks, start, to_state, level, words
):
    trades = heard(notices.ALERT, notices.TRADE_EVENTS)
    trade = filled_trade(start)

    with django_capture_on_commit_callbacks(execute=True):
        trade.advance(to_state, detail="imbalance closed by the desk")

    [told] = trades.notices()
    assert words in told["text"] and told["level"] == level


@pytest.mark.django_db
def test_a_transition_that_rolls_back_is_never_announced(heard, django_capture_on_commit_callbacks):
    trades = heard(notices.ALERT, notices.TRADE_EVENTS)
    trade = filled_trade()

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        trade.advance(State.CLOSED, realised_net_profit=D(1))
        raise RuntimeError("the settlement failed after the transition")

    assert trades.notices() == []


@pytest.mark.django_db
def test_the_kill_switch_thrown_tripped_and_reset_are_each_announced(
    heard, fresh_cache, django_capture_on_commit_callbacks
):
    switch = heard(notices.ALERT, notices.KILL_SWITCH)
    person = UserFactory(username="dana")

    with django_capture_on_commit_callbacks(execute=True):
        services.throw_kill_switch(reason="venue maintenance", user=person)
        services.reset_kill_switch(user=person)
        services.trip_kill_switch(reason="daily loss limit reached")

    assert [(n["level"], n["text"]) for n in switch.notices()] == [
        (notices.ERROR, "Kill switch thrown by dana: venue maintenance"),
        (notices.SUCCESS, "Kill switch reset by dana: the desk may trade again"),
        (notices.ERROR, "Kill switch tripped by the desk: daily loss limit reached"),
    ]


@pytest.mark.django_db
def test_a_limit_hit_on_every_opportunity_is_announced_once(
    heard, fresh_cache, django_capture_on_commit_callbacks
):
    limits = heard(notices.ALERT, notices.LIMITS)

    with django_capture_on_commit_callbacks(execute=True):
        for opportunity in range(5):
            alerts.limit_hit("max trades per minute", str(opportunity))

    [told] = limits.notices()
    assert told["text"] == "Limit hit: max trades per minute (first seen on 0)"
    assert told["level"] == notices.WARNING


def test_an_announcement_has_a_known_level():
    with pytest.raises(ValueError, match="level"):
        notices.announcement(notices.FEEDS, "x", "shout")


def heartbeat(**states: str) -> dict:
    feeds = {venue: {"state": state} for venue, state in states.items()}
    return {"ts": time.time(), "feeds": feeds}


def test_a_feed_is_announced_when_it_goes_down_and_when_it_comes_back():
    watch = FeedWatch()

    first = watch.changes(heartbeat(kraken="live", coinbase="stale"))
    down = watch.changes(heartbeat(kraken="circuit_open", coinbase="stale"))
    same = watch.changes(heartbeat(kraken="circuit_open", coinbase="stale"))
    back = watch.changes(heartbeat(kraken="live", coinbase="live"))

    assert first == [] and same == []  # what is seen first the page already shows
    assert down == [("kraken", "circuit_open")]
    assert back == [("coinbase", "live"), ("kraken", "live")]
    assert watch.changes(None) == []  # no heartbeat: nothing to compare, nothing forgotten
    assert watch.changes(heartbeat(kraken="connecting")) == []


# Through the real ASGI app: who hears what, as the page receives it.


def communicator(user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, "/ws/live/?topics=desk", headers=[(b"origin", b"http://testserver")]
    )
    comm.scope["user"] = user
    return comm


@pytest.fixture
def close_render_thread():
    yield
    live._RENDERER.submit(connections.close_all).result()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_trade_closed_reaches_a_traders_page_and_not_one_that_may_not_see_trades(
    user_with_role, close_render_thread
):
    trader = communicator(await database_sync_to_async(user_with_role)(TRADER))
    blind = communicator(await database_sync_to_async(desk_user_without_trades)())
    assert (await trader.connect())[0] and (await blind.connect())[0]
    trade = await database_sync_to_async(filled_trade)()

    await database_sync_to_async(trade.advance)(State.CLOSED, realised_net_profit=D("2.5"))

    html = await trader.receive_from(timeout=5)
    assert 'hx-swap-oob="beforeend:#notice-stack"' in html
    assert f"Trade #{trade.pk} BTC-USD closed: net +2.50 USD" in html
    assert 'class="notice notice-success"' in html
    assert await blind.receive_nothing(timeout=0.5)
    await trader.disconnect()
    await blind.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_kill_switch_reaches_every_desk_page_as_an_error_that_is_escaped(
    user_with_role, close_render_thread
):
    blind = communicator(await database_sync_to_async(desk_user_without_trades)())
    assert (await blind.connect())[0]
    person = await database_sync_to_async(UserFactory)(username="dana")

    await database_sync_to_async(services.throw_kill_switch)(
        reason="<script>alert(1)</script>", user=person
    )

    html = await blind.receive_from(timeout=5)
    assert 'class="notice notice-error"' in html and 'role="alert"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    await blind.disconnect()
    await database_sync_to_async(services.reset_kill_switch)(user=person)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_feed_going_down_reaches_the_pages_that_may_see_venues(
    user_with_role, close_render_thread, monkeypatch
):
    monkeypatch.setattr(live, "_feeds", FeedWatch())
    await database_sync_to_async(ExchangeFactory)(slug="kraken", name="Kraken")
    viewer = communicator(await database_sync_to_async(user_with_role)(VIEWER))
    blind = communicator(await database_sync_to_async(desk_user_without_trades)())
    assert (await viewer.connect())[0] and (await blind.connect())[0]

    pushed, blind_pushed = [], []
    for state in ("live", "stale"):
        await database_sync_to_async(cache.set)(ENGINE_HEARTBEAT_KEY, heartbeat(kraken=state))
        await database_sync_to_async(notices.publish)(notices.HEALTH)
        # The heartbeat is read before the status bar is pushed: each state is seen in turn, the
        # notification in the same message as the fragments.
        pushed.append(await viewer.receive_from(timeout=5))
        blind_pushed.append(await blind.receive_from(timeout=5))

    assert ["The Kraken feed is down (stale)" in html for html in pushed] == [False, True]
    assert all('id="desk-status"' in html for html in pushed)
    assert not any("notice-stack" in html for html in blind_pushed)  # the desk bar only
    await viewer.disconnect()
    await blind.disconnect()
    await database_sync_to_async(cache.delete)(ENGINE_HEARTBEAT_KEY)
