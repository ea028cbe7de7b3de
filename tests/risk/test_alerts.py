"""Alerts reach a real HTTP endpoint through apprise, once per incident."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from risk import alerts, checks, services
from tests.factories import UserFactory
from trading.execution.desk import record_refusals


@pytest.fixture
def receiver():
    """A local HTTP server that keeps the JSON body of every POST it receives."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, received
    server.shutdown()
    server.server_close()


@pytest.fixture
def alerting(settings, receiver, fresh_cache):
    """Alerts configured to the receiver; the task runs in-process even when a broker is set."""
    from arbsite.celery import app

    server, received = receiver
    settings.ALERT_URLS = [f"json://127.0.0.1:{server.server_address[1]}/alerts"]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield received
    app.conf.task_always_eager = eager


def test_two_trips_in_a_row_send_one_message(alerting, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert services.trip_kill_switch(reason="daily loss limit reached")
        services.reset_kill_switch(user=UserFactory())
        assert services.trip_kill_switch(reason="daily loss limit reached")

    assert len(alerting) == 1
    assert alerting[0]["title"] == "Arbitrage desk: kill switch"
    assert "daily loss limit reached" in alerting[0]["message"]


def test_a_limit_hit_on_every_tick_alerts_once(alerting, desk, django_capture_on_commit_callbacks):
    _, opportunity = desk

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            record_refusals(opportunity.pk, [checks.TRADE_RATE, checks.PROFIT_BPS])

    assert [message["title"] for message in alerting] == ["Arbitrage desk: limit hit"]
    assert checks.TRADE_RATE in alerting[0]["message"]


def test_different_incidents_each_alert(alerting, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alerts.feed_down("kraken", 12_000)
        alerts.feed_down("coinbase", 12_000)
        alerts.one_legged_trade(7, "sell leg filled 0.3 of 1")

    assert len(alerting) == 3
    assert "Trade 7 is one-legged" in alerting[2]["message"]


def test_nothing_is_queued_without_alert_urls(settings, fresh_cache):
    settings.ALERT_URLS = []

    assert alerts.feed_down("kraken", 12_000) is False
