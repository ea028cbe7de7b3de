"""`manage.py simulate_venues`: serve the simulated exchanges on loopback until SIGINT/SIGTERM."""

import asyncio
import signal

from django.core.management.base import BaseCommand

from markets.simulator.demo import open_demo_accounts
from markets.simulator.server import VenueSimulator


class Command(BaseCommand):
    help = "Serve simulated Coinbase, Kraken and Binance (market data, orders) on one local port."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, host: str, port: int, seed: int, **options) -> None:
        asyncio.run(self._serve(host, port, seed))

    async def _serve(self, host: str, port: int, seed: int) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with VenueSimulator(host, port, seed=seed) as simulator:
            open_demo_accounts(simulator.venues)  # the keys seed_demo stores for the desk
            for name, url in simulator.urls.items():
                self.stdout.write(f"{name:<13} {url}")
            self.stdout.flush()
            await stop.wait()
        self.stdout.write("simulated venues stopped")
