from django.apps import AppConfig


class ArbsiteConfig(AppConfig):
    name = "arbsite"
    verbose_name = "Desk"
