"""Serve the site with daphne and run the engine in the same process and loop (`make run`).

On the embedded default the channel layer lives in memory, so the engine's pushes reach the
pages only when both share one process.
"""

import asyncio
import os

from django.core.management.base import BaseCommand

from arbsite.management.commands.seed_demo import DEMO_USERS, demo_password, second_factor_note


class Command(BaseCommand):
    help = "Run the web UI and the engine on simulated venues in one process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=8765)

    def handle(self, *args, host: str, port: int, sim_port: int, **options) -> None:
        from daphne.server import Server, twisted_loop  # installs the asyncio reactor first
        from twisted.internet import reactor

        from arbsite.asgi import application
        from arbsite.beat import run_schedule
        from trading.engine.runner import EngineOptions, run_engine

        stop = asyncio.Event()
        options = EngineOptions(simulate=True, sim_host=host, sim_port=sim_port)
        engine = []
        reactor.callWhenRunning(
            lambda: engine.extend(
                asyncio.ensure_future(work, loop=twisted_loop)
                # No beat process on the embedded default: its schedule runs here.
                for work in (run_engine(options, stop), run_schedule(stop))
            )
        )
        reactor.addSystemEventTrigger("before", "shutdown", self.stop_engine, stop, engine)
        self.print_banner(host, port)
        try:
            Server(application, endpoints=[f"tcp:port={port}:interface={host}"]).run()
        finally:
            self.stop_embedded_database()

    def stop_engine(self, stop: asyncio.Event, engine: list):
        """Let the engine close its opportunities and connections before the reactor stops."""
        from twisted.internet.defer import Deferred

        stop.set()
        return Deferred.fromFuture(asyncio.gather(*engine)) if engine else None

    def stop_embedded_database(self) -> None:
        """On the embedded default, leave its PostgreSQL, stopping it unless another process
        (a test run, a second desk) still uses it; exiting would too, this says which."""
        from django.db import connection, connections

        from arbsite import embedded_postgres

        if connection.settings_dict["ENGINE"] != "arbsite.embedded_postgres":
            return
        connections.close_all()
        if embedded_postgres.release():
            self.stdout.write("Embedded PostgreSQL stopped.")
        else:
            self.stdout.write("Embedded PostgreSQL left running for the other processes using it.")

    def print_banner(self, host: str, port: int) -> None:
        lines = [f"Arbitrage desk: http://{host}:{port}/", "Demo logins (username / password):"]
        lines += [f"  {user:<8} {demo_password()}   ({role})" for user, role in DEMO_USERS.items()]
        if not os.environ.get("DEMO_PASSWORD"):
            lines.append("  (set DEMO_PASSWORD before the first run to choose another password)")
        lines.append(second_factor_note().removeprefix("seed_demo: "))
        self.stdout.write("\n".join(lines), ending="\n")
