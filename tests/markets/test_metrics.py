"""The engine's Prometheus metrics: read from each connection's counters when scraped."""

import socket
import urllib.request

from prometheus_client import REGISTRY

from markets.metrics import serve_metrics

HEALTH = {
    "venue": "kraken",
    "state": "backing_off",
    "frames": 1234,
    "reconnects": 3,
    "resyncs": 2,
    "gaps": 0,
    "checksum_failures": 2,
    "malformed": 1,
    "last_frame_age": 4.5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_metrics_endpoint_serves_each_connections_counters_and_state():
    port = free_port()
    health = dict(HEALTH)
    collector = serve_metrics(lambda: [health], port)
    try:
        health["frames"] = 1300  # read at scrape time, not copied at registration
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        REGISTRY.unregister(collector)

    text = body.decode()
    assert 'arb_feed_frames_total{venue="kraken"} 1300.0' in text
    assert 'arb_feed_reconnects_total{venue="kraken"} 3.0' in text
    assert 'arb_books_invalidated_total{venue="kraken"} 2.0' in text
    assert 'arb_feed_state{state="backing_off",venue="kraken"} 1.0' in text
    assert 'arb_feed_state{state="live",venue="kraken"} 0.0' in text
    assert 'arb_feed_last_frame_age_seconds{venue="kraken"} 4.5' in text
    assert "arb_frame_to_detection_seconds_bucket" in text
