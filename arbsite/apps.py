from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ArbsiteConfig(AppConfig):
    name = "arbsite"
    verbose_name = "Desk"

    def ready(self) -> None:
        from django.apps import apps

        # Connect the receivers: login, failed login and desk changes; the announced events.
        from . import audit, notifications  # noqa: F401
        from .roles import sync_roles

        # After auth's own handler has created every model's permissions (auth comes first).
        post_migrate.connect(lambda **kw: sync_roles(apps), sender=self, weak=False)
