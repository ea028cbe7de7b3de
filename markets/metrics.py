"""Prometheus metrics of the engine's connections, read from their counters at scrape time."""

from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

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


def serve_metrics(healths: Callable[[], Iterable[dict]], port: int) -> FeedCollector:
    """Register the feed collector and, with a port, serve /metrics from a thread."""
    collector = FeedCollector(healths)
    REGISTRY.register(collector)
    if port:
        start_http_server(port, addr="0.0.0.0")
    return collector
