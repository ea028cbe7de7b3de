"""The site's /metrics: administrators or the scrape token; engine feeds from its heartbeat."""

import pytest

from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from markets.heartbeat import record_engine_heartbeat

FEED = {
    "venue": "coinbase",
    "state": "live",
    "frames": 42,
    "reconnects": 1,
    "resyncs": 0,
    "gaps": 0,
    "checksum_failures": 0,
    "malformed": 0,
    "last_frame_age": 0.5,
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [(VIEWER, 403), (TRADER, 403), (RISK_MANAGER, 403), (ADMINISTRATOR, 200)]
)
def test_metrics_are_for_administrators(client, user_with_role, role, status):
    client.force_login(user_with_role(role))

    assert client.get("/metrics").status_code == status


@pytest.mark.django_db
def test_metrics_refuse_anonymous_and_a_wrong_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


@pytest.mark.django_db
def test_scrape_token_reads_the_engine_feeds_from_its_heartbeat(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    record_engine_heartbeat({"feeds": {"coinbase": FEED}})

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")

    text = response.content.decode()
    assert response.status_code == 200
    assert 'arb_feed_frames_total{venue="coinbase"} 42.0' in text
    assert 'arb_feed_state{state="live",venue="coinbase"} 1.0' in text
    assert "arb_engine_heartbeat_age_seconds" in text
    assert "arb_opportunities_open 0.0" in text
