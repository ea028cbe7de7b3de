"""Live pushes, the web side: which notice groups a page's user may join, and rendering once.

Any process publishes a notice of what changed (markets.notices); the process holding the pages'
WebSockets renders each fragment the notice concerns once for all its consumers of one audience,
so template and database work stays off the engine's loop and out of the publishers.
"""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.db import close_old_connections
from django.template.loader import render_to_string

from arbsite.access import OPERATE, OPERATE_PERM, TRADES_PERM, VIEW, VIEW_PERM
from arbsite.notifications import FeedWatch, feed_announcement
from arbsite.pages import shared
from arbsite.pages.fragments import TOPICS, Fragment
from arbsite.sessions import STAFF, socket_still_allowed
from markets import notices
from markets.heartbeat import engine_heartbeat
from markets.models import Exchange

log = logging.getLogger(__name__)

# group -> the (fragment, key) pairs a page re-renders when a notice reaches that group.
Subscriptions = dict[str, list[tuple[Fragment, str]]]

# One thread renders the pushes, so they never queue behind (or hold up) request handlers.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-render")
# Renders under way or just done in this process, shared by every consumer that got the notice.
_renders: dict[tuple, asyncio.Future] = {}
KEEP_RENDER_S = 10.0
CHECK_CONNECTIONS_S = 1.0
_checked = float("-inf")  # when the render thread last checked its connections (monotonic)
# A topic as a page asks for it ("desk", "spreads:BTC-USD"); anything else is ignored before it
# could name a channel group.
_TOPIC = re.compile(r"[a-z][a-z-]{0,30}(:[A-Za-z0-9_.-]{1,40})?")
# Who hears each category of announcement: the permission that shows its subject on the pages.
ANNOUNCED_TO = {
    notices.TRADE_EVENTS: TRADES_PERM,
    notices.KILL_SWITCH: VIEW_PERM,
    notices.FEEDS: "markets.view_exchange",
    notices.LIMITS: "risk.view_riskprofile",
}
_feeds = FeedWatch()


async def page_groups(user, topics: list[str]) -> tuple[str, Subscriptions, list[str]] | None:
    """`subscriptions` and `announcement_groups` in one trip to the database thread; None for a
    user without the desk permission.

    A page opening is a handful of permission checks; as one trip each, 200 pages opening at once
    queued every check behind every other page's, and none finished within daphne's 5 s.
    """
    return await database_sync_to_async(_page_groups)(user, topics)


def _page_groups(user, topics: list[str]) -> tuple[str, Subscriptions, list[str]] | None:
    if not user.has_perm(VIEW_PERM):
        return None
    return (*_subscriptions(user, topics), _announcement_groups(user))


async def subscriptions(user, topics: list[str]) -> tuple[str, Subscriptions]:
    """The audience of `user` and what it may follow of `topics` ("spreads:BTC-USD", "desk").

    A topic that is malformed, unknown, keyed where it takes no key or not visible is ignored.
    """
    return await database_sync_to_async(_subscriptions)(user, topics)


def _subscriptions(user, topics: list[str]) -> tuple[str, Subscriptions]:
    if not user.has_perm(VIEW_PERM):
        return VIEW, {}
    audience = OPERATE if user.has_perm(OPERATE_PERM) else VIEW
    wanted: Subscriptions = {}
    for requested in dict.fromkeys(topics):
        if not _TOPIC.fullmatch(requested):
            continue
        topic, _, key = requested.partition(":")
        for kind, fragment in TOPICS.get(topic, []):
            if fragment.keyed != bool(key) or not _may_see(user, fragment):
                continue
            wanted.setdefault(notices.group(kind, key), []).append((fragment, key))
    return audience, wanted


def _may_see(user, fragment: Fragment) -> bool:
    if fragment.staff_only and not user.is_staff:
        return False
    return fragment.perm == VIEW_PERM or user.has_perm(fragment.perm)


def render(fragment: Fragment, key: str, audience: str, published: float) -> str:
    """The fragment as a push carries it, stamped with the notice's publish time."""
    with shared.snapshot(published):  # the fragments of one push share their reads
        return fragment.render(key, fragment.audience_for(audience), published)


def rendered(
    fragment: Fragment, key: str, audience: str, published: float
) -> Awaitable[str | None]:
    """`render` run once in this process for all the consumers that received one notice: asked
    for now, awaited later.

    None when it failed to render (logged once): the page keeps its last fragment.
    """
    audience = fragment.audience_for(audience)
    ident = (f"push of {fragment.topic}", key, audience, published)
    return _once(ident, render, fragment, key, audience, published)


async def announcement_groups(user) -> list[str]:
    """The announcement groups `user` may join: every page of theirs shows these notifications."""
    return await database_sync_to_async(_announcement_groups)(user)


def _announcement_groups(user) -> list[str]:
    if not user.has_perm(VIEW_PERM):
        return []
    return [
        notices.group(notices.ALERT, category)
        for category, perm in ANNOUNCED_TO.items()
        if user.has_perm(perm)
    ]


def render_announcement(announcement: dict) -> str:
    """The notification as the page's notification stack takes it (base.html#notification)."""
    return render_to_string("base.html#notification", {"notification": announcement})


def rendered_announcement(announcement: dict) -> Awaitable[str | None]:
    """`render_announcement` run once in this process for every page that hears it."""
    return _once(("alert", announcement["id"]), render_announcement, announcement)


def rendered_feed_changes(published: float) -> Awaitable[str | None]:
    """The venue feeds that went down or came back since the last heartbeat, as notifications
    (nothing when none did, or the heartbeat cannot be read): looked up and rendered once per
    heartbeat notice for all of this process's pages, in one trip to the render thread."""
    return _once(("feeds", published), _feed_changes)


def _feed_changes() -> str:
    changes = _feeds.changes(engine_heartbeat())
    if not changes:  # the usual heartbeat: no database trip for the venues' names
        return ""
    names = dict(Exchange.objects.values_list("slug", "name"))
    return "".join(
        render_announcement(feed_announcement(names.get(venue, venue), state))
        for venue, state in changes
    )


def perms_behind(audience: str, wanted: Subscriptions, announced: list[str]) -> frozenset[str]:
    """The permissions a page's groups (`page_groups`) were joined on: without any one of them
    the page would not hear all it does."""
    topics = {fragment.perm for its in wanted.values() for fragment, _ in its}
    if any(fragment.staff_only for its in wanted.values() for fragment, _ in its):
        topics.add(STAFF)
    alerts = {
        perm
        for category, perm in ANNOUNCED_TO.items()
        if notices.group(notices.ALERT, category) in announced
    }
    controls = {OPERATE_PERM} if audience == OPERATE else set()
    return frozenset({VIEW_PERM, *topics, *alerts, *controls})


async def login_still_allowed(session_key: str | None, user_id: int, perms: frozenset[str]) -> bool:
    """`sessions.socket_still_allowed` for a page's login and `perms` (`perms_behind`), on the
    render thread: the fanout's task that asks carries the thread context of whichever page
    joined first, perhaps long gone, so a thread-sensitive trip from it would wait on a closed
    executor."""
    run = database_sync_to_async(socket_still_allowed, thread_sensitive=False, executor=_RENDERER)
    return await run(session_key, user_id, *sorted(perms))


def _once(ident: tuple, function, *args) -> Awaitable:
    """`function(*args)` run on the render thread once for every consumer awaiting `ident`.

    None when it failed (logged once).
    """
    loop = asyncio.get_running_loop()
    return _one_job(
        ident,
        lambda: _logged(ident, loop.run_in_executor(_RENDERER, _on_render_thread, function, *args)),
    )


def push_once(ident: tuple, make, *args) -> Awaitable:
    """`make(*args)` (a coroutine function) once for every consumer awaiting `ident` (in the
    process's first KEEP_RENDER_S of it): 200 pages alike each assembled the same push, a third
    of the loop's work per page besides sending it."""
    return _one_job(("push", *ident), lambda: make(*args))


def _one_job(ident: tuple, start) -> Awaitable:
    """The job `start()` begins, begun by the first to ask for `ident` and shared by the rest."""
    job = _renders.get(ident)
    if job is None:
        job = _renders[ident] = asyncio.ensure_future(start())
        asyncio.get_running_loop().call_later(KEEP_RENDER_S, _renders.pop, ident, None)
    # Shielded: a consumer that disconnects meanwhile must not cancel the job for the rest.
    return asyncio.shield(job)


def _on_render_thread(function, *args):
    """`function(*args)`, the render thread's database connection checked first at most once
    every CHECK_CONNECTIONS_S: the thread lives as long as the process, so it retires its
    connection past CONN_MAX_AGE, or broken, as a request would.

    Not before every job, as database_sync_to_async does: each check is a round trip (the
    health check's SELECT 1), and a push of four fragments made four. A connection that breaks
    fails the renders until the next check (logged; the pages keep their fragments).
    """
    global _checked
    now = time.monotonic()
    if now - _checked >= CHECK_CONNECTIONS_S:
        close_old_connections()
        _checked = now
    return function(*args)


async def _logged(ident: tuple, job):
    try:
        return await job
    except Exception:
        log.exception("live %s %r failed", ident[0], ident[1:])
        return None
