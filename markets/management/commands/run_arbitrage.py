"""Run the engine on its own (the full stack's `engine` service)."""

import asyncio
import signal

from django.core.management.base import BaseCommand

from markets.engine import Engine


class Command(BaseCommand):
    help = "Hold the exchange WebSockets and the detector until SIGINT/SIGTERM."

    def handle(self, *args, **options) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        engine = Engine()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        await engine.run()
