"""The one live WebSocket consumer: login and permission checked before joining any group.

Besides the fragments its page follows, every page hears the announcements (notifications) its
user may see.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from arbsite import fanout, live, twofactor
from markets import notices

log = logging.getLogger(__name__)

MAX_TOPICS = 20
# The close code a page takes as "log in again" (as for a socket refused at connect).
LOGIN_ENDED = 4401
FEEDS = "feeds"  # a part of a push: the feed changes a heartbeat notice brought


class LiveConsumer(AsyncWebsocketConsumer):
    """Follows the topics the page asks for (`?topics=desk,spreads:BTC-USD`) that its role may see.

    Each push is a complete fragment, rendered once per process for all its consumers, so a push
    that did not arrive is made good by the next one. Notices reach the page through its
    process's one member of each group (arbsite.fanout), not through a channel of its own.
    """

    audience: str
    wanted: live.Subscriptions
    announced: list[str]
    hears_feeds: bool
    follows: tuple  # what its pushes depend on besides the notices: pages alike share them
    needs: frozenset[str]  # the permissions its groups were joined on, re-checked with its login
    accepted: bool = False
    recheck_at: float = 0.0
    checking: asyncio.Future | None = None  # a push waiting for the login's re-check
    ended: bool = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=LOGIN_ENDED)
            return
        if not await twofactor.socket_passed(self.scope):  # still owes its second factor
            await self.close(code=LOGIN_ENDED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        topics = [t for value in query.get("topics", []) for t in value.split(",") if t]
        groups = await live.page_groups(user, topics[:MAX_TOPICS])
        if groups is None:
            await self.close(code=4403)
            return
        self.audience, self.wanted, self.announced = groups
        self.needs = live.perms_behind(*groups)
        self.hears_feeds = notices.group(notices.ALERT, notices.FEEDS) in self.announced
        self.follows = (
            self.audience,
            self.hears_feeds,
            *((g, *((f.topic, f.template, k) for f, k in its)) for g, its in self.wanted.items()),
        )
        try:
            for group in self.groups_joined():
                await fanout.fanout().join(group, self)
            await self.accept()
            self.recheck_at = time.monotonic() + settings.SOCKET_RECHECK_S
            self.accepted = True  # a notice that came in the meantime is not sent before this
        except BaseException:
            # A socket that never opened gets no disconnect: its groups would keep it a day.
            await self.leave_groups()
            raise

    async def disconnect(self, code: int) -> None:
        await self.leave_groups()

    def groups_joined(self) -> list[str]:
        return [*getattr(self, "wanted", {}), *getattr(self, "announced", [])]

    async def leave_groups(self) -> None:
        self.accepted = False
        for group in self.groups_joined():
            await fanout.fanout().leave(group, self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing the desk acts on (htmx may send form values); ignore it."""

    async def hear(self, heard: list[dict]) -> None:
        """Notices to this page's groups, from the fanout: push what they changed, in one message
        (htmx swaps each fragment of it by its id).

        Runs on the fanout's task, not this consumer's, so it skips the `close_old_connections`
        channels runs before every handler: a push never touches this thread's database
        connection (the fragments are rendered on `live`'s own thread).
        """
        if not self.accepted or self.ended:
            return
        if self.checking is not None or time.monotonic() >= self.recheck_at:
            # On a task of its own: the check is a trip to the database, and the process's other
            # pages wait for each page the fanout hands a push to (200 pages opened together
            # came due together, a few milliseconds each). A later push waits behind it.
            self.checking = asyncio.ensure_future(self.push_checked(self.checking, heard))
            return
        await self.push(heard)

    async def push_checked(self, before: asyncio.Future | None, heard: list[dict]) -> None:
        """`push` of `heard` once the push before has gone and if the login still holds."""
        try:
            if before is not None:
                await before
            if not self.ended and await self.login_holds():
                await self.push(heard)
        except Exception:
            log.debug("live push to a page failed", exc_info=True)  # as the fanout's own
        finally:
            if self.checking is asyncio.current_task():
                self.checking = None

    async def push(self, heard: list[dict]) -> None:
        # Pages that follow the same and hear the same get the same text: made once.
        heard_as = [(n["kind"], n["key"], n["published"], n.get("id")) for n in heard]
        html = await live.push_once((self.follows, *heard_as), self.push_of, heard)
        if html:
            await self.send(text_data=html)

    async def push_of(self, heard: list[dict]) -> str:
        """The text of this page's push of `heard`, in one message."""
        # What to push: each announcement, each heartbeat's feed changes, and each fragment once,
        # as of the last notice that re-renders it (the status bar follows opportunities and
        # health). Every part is asked for before the first is awaited: the first page to hear
        # a batch queues all of its renders at once.
        todo: dict[object, dict] = {}
        for index, notice in enumerate(heard):
            if notice["kind"] == notices.ALERT:
                todo[index] = notice
                continue
            if notice["kind"] == notices.HEALTH and self.hears_feeds:
                todo[FEEDS, index] = notice
            for wanted in self.wanted.get(notices.group(notice["kind"], notice["key"]), []):
                todo.pop(wanted, None)
                todo[wanted] = notice
        parts = [self.part(what, notice) for what, notice in todo.items()]
        return "".join(filter(None, [await part for part in parts]))

    def part(self, what, notice: dict) -> Awaitable[str | None]:
        """One part of a push, asked for now and awaited later."""
        if isinstance(what, int):
            return live.rendered_announcement(notice)
        if what[0] == FEEDS:
            # Not a task per page: awaiting one that is not done yet gives the loop a turn, and
            # 200 pages each waited for one (a heartbeat's push took 60 ms longer to reach all).
            return live.rendered_feed_changes(notice["published"])
        fragment, key = what
        return live.rendered(fragment, key, self.audience, notice["published"])

    async def login_holds(self) -> bool:
        """Re-check the login (SOCKET_RECHECK_S: at most that late, one query) before a push: a
        login logged out, past its age, idle too long, made before a password change or a second
        factor reset, or whose user was deactivated or lost a permission its groups were joined
        on, closes the socket (the page then reloads to the login page, which sends a user still
        logged in back to the page, now without what they lost) and hears nothing more. Its
        groups are left by its disconnect, on its own task: this runs on the fanout's, which the
        last page leaving would stop under its own feet."""
        if time.monotonic() < self.recheck_at:
            return True
        session = self.scope.get("session")
        allowed = await live.login_still_allowed(
            getattr(session, "session_key", None), self.scope["user"].pk, self.needs
        )
        if allowed:
            self.recheck_at = time.monotonic() + settings.SOCKET_RECHECK_S
            return True
        self.ended = True
        await self.close(code=LOGIN_ENDED)
        return False
