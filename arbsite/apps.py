from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ArbsiteConfig(AppConfig):
    name = "arbsite"
    verbose_name = "Desk"

    def ready(self) -> None:
        from django.apps import apps

        from . import audit  # noqa: F401 - connects the login, failed-login and desk-change receivers
        from .roles import sync_roles

        # After auth's own handler has created every model's permissions (auth comes first).
        post_migrate.connect(lambda **kw: sync_roles(apps), sender=self, weak=False)
