"""The engine's Prometheus metrics: read from each connection's counters when scraped."""

import socket
import urllib.error
import urllib.request

import pytest
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


def host_address() -> str:
    """This host's address on its outward interface (a UDP connect sends no packet)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("203.0.113.1", 9))
            return sock.getsockname()[0]
    except OSError:
        pytest.skip("no network interface besides loopback")


def scrape(host: str, port: int, token: str | None = None) -> int:
    """The status of GET /metrics, or 0 when nothing answers there."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://{host}:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0


@pytest.fixture
def served():
    """serve_metrics on a free port with `HEALTH`; the collector unregistered afterwards."""
    collectors = []

    def serve() -> int:
        port = free_port()
        collectors.append(serve_metrics(lambda: [HEALTH], port))
        return port

    yield serve
    for collector in collectors:
        REGISTRY.unregister(collector)


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


def test_engine_metrics_listen_on_loopback_only_by_default(served):
    host = host_address()

    port = served()

    assert scrape("127.0.0.1", port) == 200
    assert scrape(host, port) == 0


def test_engine_metrics_listen_where_engine_metrics_addr_says(served, settings):
    settings.ENGINE_METRICS_ADDR = "0.0.0.0"
    host = host_address()

    port = served()

    assert scrape(host, port) == 200


def test_engine_metrics_with_a_token_answer_only_the_bearer_of_it(served, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    port = served()

    assert scrape("127.0.0.1", port) == 403
    assert scrape("127.0.0.1", port, token="wrong") == 403
    assert scrape("127.0.0.1", port, token="s3cret-scrape-token") == 200
