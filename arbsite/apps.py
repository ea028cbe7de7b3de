from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ArbsiteConfig(AppConfig):
    name = "arbsite"
    verbose_name = "Desk"

    def ready(self) -> None:
        from django.apps import apps

        from . import audit  # noqa: F401 - connects the login / failed-login receivers
        from .roles import sync_roles

        # After auth's own handler has created every model's permissions (auth comes first).
        post_migrate.connect(lambda **kw: sync_roles(apps), sender=self, weak=False)
        connect_live_pushes()


def connect_live_pushes() -> None:
    """Push trades and balances to the pages when the apps that send those signals are present."""
    from .live import publish_now

    try:
        from trading.signals import trade_changed
    except ImportError:
        pass
    else:
        trade_changed.connect(
            lambda **kw: publish_now("trades"), weak=False, dispatch_uid="live_trades"
        )
    try:
        from portfolio.signals import balance_changed
    except ImportError:
        pass
    else:
        balance_changed.connect(
            lambda **kw: publish_now("portfolio"), weak=False, dispatch_uid="live_portfolio"
        )
