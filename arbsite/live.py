"""Live pushes: the Channels group names, who may join them, and the publish helpers.

Each push is one page partial swapped out-of-band by htmx. The publisher (engine, worker, request)
sends its group a small notice; the process holding the group's WebSockets renders the partial
once for all of them, so template and database work stays off the engine's hot loop.
"""

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from portfolio.models import Mode
from risk.models import KillSwitch, RiskProfile
from risk.selectors import status_panel

log = logging.getLogger(__name__)

VIEW, OPERATE = "view", "operate"
VIEW_PERM, OPERATE_PERM = "arbsite.view_desk", "arbsite.operate_desk"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Fragment:
    """One pushed partial: its topic (a group base), template and context function.

    `context` is "module.function", called with the key and the audience (view or operate);
    `by_audience` renders it once per audience when it shows controls only traders may use.
    """

    topic: str
    template: str
    context: str
    keyed: bool = False
    by_audience: bool = False
    perm: str = VIEW_PERM
    staff_only: bool = False

    @property
    def audiences(self) -> tuple[str, ...]:
        return (VIEW, OPERATE) if self.by_audience else (VIEW,)

    def group(self, key: str, audience: str) -> str:
        name = f"{self.topic}.{_UNSAFE.sub('_', key)}" if self.keyed else self.topic
        return f"{name}.{audience}" if self.by_audience else name

    def render(self, key: str, audience: str, published: float) -> str:
        module, name = self.context.rsplit(".", 1)
        build: Callable[..., dict] = getattr(import_module(module), name)
        context = {**build(key, audience=audience), "published": f"{published:.6f}"}
        return render_to_string(self.template, context)


# What each kind of change re-renders; the consumer joins the topics the page asks for.
FRAGMENTS: dict[str, list[Fragment]] = {
    "market": [
        Fragment("spreads", "dashboard.html#spread", "markets.views.spread_context", keyed=True),
        Fragment("depth", "market_detail.html#depth", "markets.views.depth_context", keyed=True),
    ],
    "opportunities": [
        Fragment(
            "opportunities",
            "dashboard.html#open-opportunities",
            "trading.views.open_opportunities_context",
            by_audience=True,
        ),
    ],
    "health": [
        Fragment("health", "dashboard.html#venue-health", "markets.views.health_context"),
        Fragment("desk", "base.html#desk-status", "arbsite.live.desk_context", by_audience=True),
        Fragment(
            "controls",
            "dashboard.html#controls",
            "markets.views.controls_context",
            by_audience=True,
        ),
    ],
    "trades": [
        Fragment("trades", "dashboard.html#recent-trades", "trading.views.recent_trades_context"),
        Fragment("pnl", "dashboard.html#pnl", "portfolio.views.pnl_context"),
    ],
    "portfolio": [
        Fragment("portfolio", "portfolio.html#balances", "portfolio.views.balances_context"),
        Fragment("pnl", "dashboard.html#pnl", "portfolio.views.pnl_context"),
    ],
    "risk-status": [
        Fragment(
            "risk-status",
            "admin/risk/riskprofile/change_form.html#risk-status",
            "arbsite.live.risk_status_context",
            perm="risk.view_riskprofile",
            staff_only=True,
        ),
    ],
}
TOPICS: dict[str, Fragment] = {f.topic: f for fragments in FRAGMENTS.values() for f in fragments}

_dirty: set[tuple[str, str]] = set()
# One thread renders the pushes, so they never queue behind (or hold up) request handlers.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-render")
# Renders under way or just done in this process, by notice, shared by every consumer that got it.
_renders: dict[tuple, asyncio.Future] = {}
KEEP_RENDER_S = 10.0


def mark_dirty(kind: str, key: str = "") -> None:
    """Note that `kind` (and `key`) changed; the pump pushes it at its next tick. Never blocks."""
    _dirty.add((kind, key))


async def pump(stop: asyncio.Event, interval_s: float = 0.5) -> None:
    """Every `interval_s`, send each dirty fragment's groups a notice to re-render it.

    The sends go out together: on a busy engine loop each Redis round trip waits for a turn.
    """
    layer = get_channel_layer()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        batch = [push for kind, key in _dirty for push in notices(kind, key)]
        _dirty.clear()
        sent = await asyncio.gather(
            *(layer.group_send(group, notice) for group, notice in batch), return_exceptions=True
        )
        for (group, _), error in zip(batch, sent, strict=True):
            if error is not None:
                log.error("live push to %s failed: %r", group, error)


def publish_now(kind: str, key: str = "") -> None:
    """Push `kind` once the current transaction commits (workers, request code)."""
    transaction.on_commit(lambda: _send(kind, key))


def _send(kind: str, key: str) -> None:
    layer = get_channel_layer()
    for group, notice in notices(kind, key):
        async_to_sync(layer.group_send)(group, notice)


def notices(kind: str, key: str = "") -> list[tuple[str, dict]]:
    """Return (group, notice) for every fragment `kind` re-renders, once per audience."""
    published = time.time()
    return [
        (
            fragment.group(key, audience),
            {
                "type": "push.fragment",
                "topic": fragment.topic,
                "key": key,
                "audience": audience,
                "published": published,
            },
        )
        for fragment in FRAGMENTS.get(kind, [])
        for audience in fragment.audiences
    ]


def render_notice(notice: dict) -> str:
    """The fragment a notice asks for, stamped with the notice's publish time."""
    fragment = TOPICS[notice["topic"]]
    return fragment.render(notice["key"], notice["audience"], notice["published"])


async def rendered(notice: dict) -> str | None:
    """`render_notice` run once in this process for all the consumers that received `notice`.

    None when it failed to render (logged once): the page keeps its last fragment.
    """
    ident = (notice["topic"], notice["key"], notice["audience"], notice["published"])
    render = _renders.get(ident)
    if render is None:
        render = _renders[ident] = asyncio.ensure_future(_render(notice))
        asyncio.get_running_loop().call_later(KEEP_RENDER_S, _renders.pop, ident, None)
    # Shielded: a consumer that disconnects meanwhile must not cancel the render for the rest.
    return await asyncio.shield(render)


async def _render(notice: dict) -> str | None:
    # database_sync_to_async: the render thread lives as long as the process, so it retires its
    # database connection as a request would (CONN_MAX_AGE, health checks).
    render = database_sync_to_async(render_notice, thread_sensitive=False, executor=_RENDERER)
    try:
        return await render(notice)
    except Exception:
        log.exception("live push of %s %r failed to render", notice["topic"], notice["key"])
        return None


async def groups_for(user, topics: list[str]) -> list[str]:
    """Return the groups `user` joins for the requested `topics` ("spreads:BTC-USD", "desk")."""
    if not await user.ahas_perm(VIEW_PERM):
        return []
    audience = OPERATE if await user.ahas_perm(OPERATE_PERM) else VIEW
    groups = []
    for requested in topics:
        topic, _, key = requested.partition(":")
        fragment = TOPICS.get(topic)
        if fragment is None or (fragment.keyed and not key):
            continue
        if fragment.staff_only and not user.is_staff:
            continue
        if fragment.perm != VIEW_PERM and not await user.ahas_perm(fragment.perm):
            continue
        groups.append(fragment.group(key, audience))
    return list(dict.fromkeys(groups))


def desk_context(key: str = "", *, audience: str = VIEW) -> dict:
    """The status every page shows: paper or live, the kill switch, automatic execution."""
    active = list(RiskProfile.objects.filter(is_active=True).values("mode", "auto_execute"))
    live = any(p["mode"] == Mode.LIVE for p in active)
    paper = [p["auto_execute"] for p in active if p["mode"] == Mode.PAPER]
    return {
        "desk": {
            "mode": "Live" if live else "Paper",
            "auto_execute": any(p["auto_execute"] for p in active),
            # What the dashboard's switch turns (None: no active paper profile to switch).
            "paper_auto_execute": paper[0] if paper else None,
            "kill_switch": _kill_switch_state(),
            "can_operate": audience == OPERATE,
        }
    }


def desk_context_for(user) -> dict:
    """`desk_context` for a page load by `user`."""
    return desk_context(audience=OPERATE if user.has_perm(OPERATE_PERM) else VIEW)


def _kill_switch_state() -> dict:
    switch = KillSwitch.objects.filter(pk=KillSwitch.SINGLETON_PK).first()
    if switch is None:
        return {"on": False, "reason": "", "changed_at": None, "automatic": False}
    return {
        "on": switch.is_on,
        "reason": switch.reason,
        "changed_at": switch.changed_at,
        "automatic": switch.automatic,
    }


def risk_status_context(key: str = "", *, audience: str = VIEW) -> dict:
    return {"status": status_panel()}


def render_page(request, template: str, context: dict, fragment: str = "") -> HttpResponse:
    """Answer htmx with `template#fragment` and a plain request with the page and desk status."""
    if fragment and request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{template}#{fragment}", context)
    return render(request, template, {**desk_context_for(request.user), **context})
