"""Prometheus metrics of the engine's connections, read from their counters at scrape time."""

import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from prometheus_client import REGISTRY, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

STATES = ("connecting", "live", "stale", "backing_off", "circuit_open")

# Receive -> book applied and detector run, per frame that changed a book.
APPLY_LATENCY = Histogram(
    "arb_frame_to_detection_seconds",
    "Time from receiving a frame to its book applied and the detector run",
    buckets=(25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 10e-3, 50e-3),
)


class FeedCollector(Collector):
    """Reads each connection's `health()` when Prometheus scrapes; nothing per frame."""

    def __init__(self, healths: Callable[[], Iterable[dict]]) -> None:
        self.healths = healths

    def collect(self):
        counters = {
            "frames": CounterMetricFamily("arb_feed_frames", "Frames received", labels=["venue"]),
            "reconnects": CounterMetricFamily(
                "arb_feed_reconnects", "Reconnections", labels=["venue"]
            ),
            "resyncs": CounterMetricFamily(
                "arb_books_invalidated", "Books invalidated and resynced", labels=["venue"]
            ),
            "gaps": CounterMetricFamily("arb_feed_gaps", "Sequence gaps", labels=["venue"]),
            "checksum_failures": CounterMetricFamily(
                "arb_feed_checksum_failures", "Checksum mismatches", labels=["venue"]
            ),
            "malformed": CounterMetricFamily(
                "arb_feed_malformed", "Malformed frames", labels=["venue"]
            ),
        }
        state = GaugeMetricFamily(
            "arb_feed_state", "1 for the connection's current state", labels=["venue", "state"]
        )
        age = GaugeMetricFamily(
            "arb_feed_last_frame_age_seconds", "Seconds since the last frame", labels=["venue"]
        )
        for health in self.healths():
            venue = health["venue"]
            for key, family in counters.items():
                family.add_metric([venue], health[key])
            for name in STATES:
                state.add_metric([venue, name], 1.0 if health["state"] == name else 0.0)
            if health["last_frame_age"] is not None:
                age.add_metric([venue], health["last_frame_age"])
        yield from counters.values()
        yield state
        yield age


def bearer_token_ok(authorization: str, token: str) -> bool:
    """Whether an Authorization header carries `token` as its bearer token (never when unset)."""
    offered = authorization.removeprefix("Bearer ")
    return bool(token) and hmac.compare_digest(offered.encode(), token.encode())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # a scrape every few seconds is not news
        pass


def _metrics_app(token: str):
    """The registry's exposition; with `token`, only for a request that bears it."""
    exposition = make_wsgi_app(REGISTRY)

    def app(environ, start_response):
        if token and not bearer_token_ok(environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"metrics need METRICS_TOKEN\n"]
        return exposition(environ, start_response)

    return app


def serve_metrics(healths: Callable[[], Iterable[dict]], port: int) -> FeedCollector:
    """Register the feed collector and, with a port, serve /metrics from a thread on
    ENGINE_METRICS_ADDR, behind METRICS_TOKEN when one is set."""
    collector = FeedCollector(healths)
    REGISTRY.register(collector)
    if port:
        addr, token = settings.ENGINE_METRICS_ADDR, settings.METRICS_TOKEN
        if not token and not (addr.startswith("127.") or addr == "localhost"):
            log.warning(
                "engine metrics on %s:%d without METRICS_TOKEN: anyone there reads them", addr, port
            )
        server = make_server(
            addr, port, _metrics_app(token), ThreadingWSGIServer, handler_class=_QuietHandler
        )
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return collector
