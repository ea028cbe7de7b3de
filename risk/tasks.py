"""Risk's Celery tasks: sending an alert off the request path, to the configured URLs."""

import logging

import apprise
from celery import shared_task
from django.conf import settings

log = logging.getLogger(__name__)


def alert_urls() -> list[str]:
    """The apprise URLs the desk's alerts go to (settings.ALERT_URLS)."""
    return [url.strip() for url in settings.ALERT_URLS if url.strip()]


@shared_task(time_limit=60, soft_time_limit=45)
def send_alert(title: str, body: str) -> bool:
    """Send one message to every configured URL; a failure is logged, never retried in a loop."""
    notifier = apprise.Apprise()
    for url in alert_urls():
        notifier.add(url)
    sent = bool(notifier.notify(title=title, body=body))
    if not sent:
        log.warning("alert not delivered to every URL: %s", title)
    return sent
