"""Fixtures for the execution tests that trade on the paper venue."""

import pytest

from tests.trading.execution.books import forget_books_and_orders


@pytest.fixture
def paper_books(db):
    """No books or paper orders left from another test, before or after this one."""
    forget_books_and_orders()
    yield
    forget_books_and_orders()


@pytest.fixture
def alerts_sent(settings, monkeypatch, fresh_cache) -> list[tuple[str, str]]:
    """Alerts configured; each (title, body) the send_alert task is queued with, not sent."""
    from risk.tasks import send_alert

    settings.ALERT_URLS = ["json://127.0.0.1:9/alerts"]
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(send_alert, "delay", lambda title, body: sent.append((title, body)))
    return sent
