"""Run the engine on its own (the full stack's `engine` service)."""

import asyncio
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from trading.engine.runner import EngineOptions, run_engine


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _cpus(value: str) -> set[int]:
    return {int(item) for item in _csv(value)}


class Command(BaseCommand):
    help = "Hold the exchange WebSockets and the detector until SIGINT/SIGTERM."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--simulate", action="store_true", help="start the simulated venues in-process first"
        )
        parser.add_argument("--sim-port", type=int, default=8765)
        parser.add_argument("--exchanges", type=_csv, default=[], help="e.g. coinbase,kraken")
        parser.add_argument("--symbols", type=_csv, default=[], help="e.g. BTC-USD,ETH-USD")
        parser.add_argument("--record", metavar="PATH", help="write every frame (.gz to compress)")
        parser.add_argument(
            "--replay",
            metavar="PATH",
            help="load test: play a recording at full speed, over and over, instead of the venues",
        )
        parser.add_argument(
            "--cpus",
            type=_cpus,
            default=os.environ.get("ENGINE_CPUS", ""),
            help="run only on these CPUs, e.g. 1 or 2,3 (Linux): a core of the engine's own",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=int(os.environ.get("ENGINE_METRICS_PORT", "9100")),
            help="serve Prometheus /metrics on this port (0: off)",
        )

    def handle(self, *args, **options) -> None:
        if options["replay"] and (options["simulate"] or options["record"]):
            raise CommandError("--replay takes the place of the venues: no --simulate or --record")
        if options["cpus"]:
            try:
                os.sched_setaffinity(0, options["cpus"])
            except OSError as exc:
                raise CommandError(f"cannot run on CPUs {sorted(options['cpus'])}: {exc}") from exc
        engine_options = EngineOptions(
            simulate=options["simulate"],
            sim_port=options["sim_port"],
            exchanges=options["exchanges"],
            symbols=options["symbols"],
            record=options["record"],
            replay=options["replay"],
            metrics_port=options["metrics_port"],
        )
        asyncio.run(self.serve(engine_options))

    async def serve(self, options: EngineOptions) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_engine(options, stop)
