"""The one live WebSocket consumer: login and permission checked before joining any group."""

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from arbsite import live

MAX_TOPICS = 20


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the groups the page asks for (`?topics=desk,spreads:BTC-USD`) that its role may see.

    Each push is a complete fragment, rendered once per process for all its consumers, so a push
    the channel layer dropped for a slow client is made good by the next one; the layer's
    per-channel capacity bounds what waits here.
    """

    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await user.ahas_perm(live.VIEW_PERM):
            await self.close(code=4403)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        topics = [t for value in query.get("topics", []) for t in value.split(",") if t]
        self.groups_joined = await live.groups_for(user, topics[:MAX_TOPICS])
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing the desk acts on (htmx may send form values); ignore it."""

    async def dispatch(self, message: dict) -> None:
        """Pushes skip the `close_old_connections` channels runs before every handler.

        That is a trip to the database thread per page per push, and a push never touches this
        thread's database connection: the fragment is rendered on `live`'s own thread.
        """
        if message["type"] == "push.fragment":
            await self.push_fragment(message)
        else:
            await super().dispatch(message)

    async def push_fragment(self, notice: dict) -> None:
        html = await live.rendered(notice)
        if html is not None:
            await self.send(text_data=html)
