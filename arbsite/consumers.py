"""The one live WebSocket consumer: login and permission checked before joining any group."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

HEALTH_GROUP = "health"


class LiveConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await user.ahas_perm("arbsite.view_desk"):
            await self.close(code=4403)
            return
        self.groups_joined = [HEALTH_GROUP]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def push_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])
