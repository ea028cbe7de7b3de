"""The site: settings, routing, roles, health, the Celery app and the live consumer."""

from .celery import app as celery_app

__all__ = ["celery_app"]
