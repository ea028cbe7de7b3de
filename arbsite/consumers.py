"""The one live WebSocket consumer: login and permission checked before joining any group."""

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from arbsite import live

MAX_TOPICS = 20


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the groups the page asks for (`?topics=desk,spreads:BTC-USD`) that its role may see.

    Each message is a complete fragment, so a push the channel layer dropped for a slow client
    is made good by the next one; the layer's per-channel capacity bounds what waits here.
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

    async def push_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])
