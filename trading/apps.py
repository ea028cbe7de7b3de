from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import post_migrate


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self) -> None:
        post_migrate.connect(roll_up_stale_trades, sender=self)


def roll_up_stale_trades(using: str, plan=None, **kwargs) -> None:
    """After `migrate`, the days whose trades were rolled up with older figures, again.

    Only on the newest schema, which the current code needs: not after a partial or backward
    `migrate`, nor after a `flush` (which sends no plan, and leaves nothing to roll up); only
    for the database the rollups are read from.
    """
    if plan is None or using != DEFAULT_DB_ALIAS:
        return
    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    from trading.reports import rollups  # the models are loaded by now

    rollups.roll_up_stale_trades()
