"""Live pushes: the Channels group names, who may join them, and the publish helpers.

Each push is one page partial rendered once for its group and swapped out-of-band by htmx.
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

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from risk.models import KillSwitch, Mode, RiskProfile
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
# One thread renders for the pump, so pushes never queue behind (or hold up) request handlers.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-render")


def mark_dirty(kind: str, key: str = "") -> None:
    """Note that `kind` (and `key`) changed; the pump pushes it at its next tick. Never blocks."""
    _dirty.add((kind, key))


async def pump(stop: asyncio.Event, interval_s: float = 0.5) -> None:
    """Every `interval_s`, render each dirty fragment once and send it to its group."""
    layer = get_channel_layer()
    render = sync_to_async(_render_batch, thread_sensitive=False, executor=_RENDERER)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if not _dirty:
            continue
        batch = list(_dirty)
        _dirty.clear()
        for group, html in await render(batch):
            await layer.group_send(group, {"type": "push.html", "html": html})


def _render_batch(batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pushes = []
    for kind, key in batch:
        try:
            pushes += render_pushes(kind, key)
        except Exception:
            log.exception("live push of %s %r failed to render", kind, key)
    return pushes


def publish_now(kind: str, key: str = "") -> None:
    """Render and send `kind` once the current transaction commits (workers, request code)."""
    transaction.on_commit(lambda: _send(kind, key))


def _send(kind: str, key: str) -> None:
    layer = get_channel_layer()
    for group, html in render_pushes(kind, key):
        async_to_sync(layer.group_send)(group, {"type": "push.html", "html": html})


def render_pushes(kind: str, key: str = "") -> list[tuple[str, str]]:
    """Return (group, html) for every fragment `kind` re-renders, once per audience."""
    published = time.time()
    pushes = []
    for fragment in FRAGMENTS.get(kind, []):
        for audience in (VIEW, OPERATE) if fragment.by_audience else (VIEW,):
            pushes.append(
                (fragment.group(key, audience), fragment.render(key, audience, published))
            )
    return pushes


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
    return {
        "desk": {
            "mode": "Live" if live else "Paper",
            "auto_execute": any(p["auto_execute"] for p in active),
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
