"""Start the engine as the commands run it: venues from the database, optionally simulated.

The runner does the engine's reads (at start-up, and the limits on reload) and wires what the
engine finds to its subscriber: opportunity rows, then automatic execution, then the pushes.
With `replay`, a recording stands in for the venue sockets (`recorded`), for load tests.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from prometheus_client import REGISTRY

from markets import notices
from markets.metrics import serve_metrics
from markets.models import SIMULATED_REST, Market
from markets.selectors import load_venues
from markets.simulator.demo import open_demo_accounts
from markets.simulator.server import VenueSimulator
from markets.venues import VenueConfig
from portfolio.models import Account, Mode
from portfolio.reconciliation import booked_as
from risk.models import RiskProfile
from trading.engine.engine import Engine, OnEvents
from trading.engine.pipeline import Limits
from trading.engine.recorded import recorded_connections
from trading.engine.writer import OpportunityWriter, close_stale_rows, execute_opened
from trading.execution.desk import trip_if
from trading.reconciliation import reconcile_at_start

log = logging.getLogger(__name__)


@dataclass
class EngineOptions:
    simulate: bool = False
    sim_host: str = "127.0.0.1"
    sim_port: int = 8765
    exchanges: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    record: str | None = None
    replay: str | None = None  # a recording played at full speed instead of the venues
    metrics_port: int = 0  # 0: no metrics server of its own (run_desk's web serves /metrics)


def _check_feeds(health: dict) -> None:
    """Trip the kill switch when a feed the desk trades on live has gone stale."""
    ages = {
        venue: feed["last_frame_age"] * 1000
        for venue, feed in health["feeds"].items()
        if feed["last_frame_age"] is not None  # not connected yet: nothing to judge
    }
    trip_if(mode=RiskProfile.objects.execution_mode(), feed_ages_ms=ages)


def limits_from_profile(mode: str | None = None) -> Limits | None:
    """The detector's limits from the profile active for `mode` (by default the mode the desk
    executes in); min profit 0: the risk checks decide the rest, and count why."""
    profile = RiskProfile.objects.active(mode or RiskProfile.objects.execution_mode())
    if profile is None:
        return None
    return Limits(
        min_profit_bps=Decimal(0),
        max_notional=profile.max_notional,
        max_book_age_s=profile.max_book_age_ms / 1000,
        max_lag_s=profile.max_lag_ms / 1000,
    )


def market_ids() -> dict[str, int]:
    return dict(Market.objects.values_list("symbol", "id"))


def opportunity_subscriber(
    venues: list[VenueConfig],
    ids: dict[str, int],
    *,
    execute: Callable[[list[int]], int] | None = execute_opened,
    notify: Callable[[str], None] | None = None,
) -> OnEvents:
    """What the engine's lifecycle events become: rows (one per lifecycle, in one transaction
    per batch), then the opened ones handed to automatic execution, then a push to the pages."""
    writer = OpportunityWriter({v.slug: v.exchange_id for v in venues}, ids)

    async def on_events(events: list) -> None:
        opened = await sync_to_async(writer.save)(events)
        if notify is not None:
            notify(notices.OPPORTUNITIES)
        if opened and execute is not None:
            await sync_to_async(execute)(opened)

    return on_events


def ledger_holdings() -> dict[str, dict[str, Decimal]]:
    """What each live account holds by its ledger, by venue and in the venue's own names (USDT
    where the ledger books it as USD): the simulated venues start again from it, as a real
    venue keeps what an account held while the desk was down."""
    held = {}
    for account in Account.objects.filter(mode=Mode.LIVE).select_related("exchange"):
        names = {desk: venue for venue, desk in booked_as(account.exchange).items()}
        rows = account.balances.values_list("asset", "amount")
        held[account.exchange.slug] = {names.get(asset, asset): amount for asset, amount in rows}
    return held


def _prepare(options: EngineOptions) -> tuple:
    closed = close_stale_rows()
    if closed:
        log.info("closed %d opportunities a previous engine left open", closed)
    # Before any new trade: finish what a stopped process left, and compare the venues with the
    # ledger (on the embedded default no other process executes, so every unfinished trade is).
    for result in reconcile_at_start(alone=settings.CELERY_TASK_ALWAYS_EAGER):
        log.info("%s reconciled: %s", result.account.exchange.slug, result.error or "answered")
    venues = load_venues(options.exchanges or None, options.symbols or None)
    return venues, market_ids(), limits_from_profile()


async def run_engine(options: EngineOptions, stop: asyncio.Event) -> None:
    """Run the engine (and the simulated venues first, with `simulate`) until `stop` is set."""
    simulator = None
    if options.simulate:
        simulator = VenueSimulator(options.sim_host, options.sim_port)
        await simulator.start()
        open_demo_accounts(simulator.venues, await sync_to_async(ledger_holdings)())
        # Orders, fees and reconciliation in this process go to these venues too, whatever port
        # the Exchange rows were seeded with.
        SIMULATED_REST.update(
            (slug, simulator.urls[f"{slug}_rest"])
            for slug in simulator.venues
            if f"{slug}_rest" in simulator.urls
        )
        log.info("simulated venues on %s", simulator.urls)
    venues, ids, limits = await sync_to_async(_prepare)(options)
    if simulator is not None:
        for venue in venues:
            venue.ws_url = simulator.urls[venue.slug]
            venue.rest_url = simulator.urls.get(f"{venue.slug}_rest", venue.rest_url)
    if not venues:
        log.error("no enabled venue with a listing: add them in the admin or run seed_demo")
    pump = notices.Pump()
    engine = Engine(
        venues,
        limits=limits,
        record_path=options.record,
        on_events=opportunity_subscriber(venues, ids, notify=pump.mark),
        load_limits=limits_from_profile,
        on_beat=_check_feeds,
        notify=pump.mark,
    )
    if options.replay:
        engine.connections = await asyncio.to_thread(
            recorded_connections, options.replay, engine.pipeline.feeds, engine.on_books_changed
        )
    collector = serve_metrics(
        lambda: [c.health() for c in engine.connections], options.metrics_port
    )
    tasks = [asyncio.create_task(engine.run())]
    tasks.append(asyncio.create_task(pump.run(engine.stopping)))
    try:
        await stop.wait()
    finally:
        engine.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        REGISTRY.unregister(collector)
        if simulator is not None:
            SIMULATED_REST.clear()
            with contextlib.suppress(Exception):
                await simulator.stop()
