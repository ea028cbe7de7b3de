"""The full stack's compose file: the simulated venues run as a service the seeded rows aim at."""

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from markets.models import Exchange

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_simulated_venues_run_as_a_service_on_the_port_the_seeded_rows_name():
    simulator = SERVICES["simulator"]
    url = SERVICES["migrate"]["environment"]["SIMULATOR_URL"]

    assert simulator["command"][2:] == ["simulate_venues", "--host", "0.0.0.0", "--port", "8765"]
    assert url == "ws://simulator:8765"
    assert "healthcheck" in simulator


def test_the_engine_starts_once_the_simulated_venues_answer():
    wait = SERVICES["engine"]["depends_on"]["simulator"]
    assert wait == {"condition": "service_healthy", "required": False}  # scale it to 0 for real


@pytest.mark.django_db
def test_seeded_exchanges_point_at_the_simulator_service_and_pass_validation(monkeypatch):
    from arbsite.management.commands import seed_demo

    monkeypatch.setenv("DEMO_PASSWORD", "the-stack-owners-own")  # .env's, as the stack needs
    url = SERVICES["migrate"]["environment"]["SIMULATOR_URL"]
    monkeypatch.setattr(seed_demo, "EXCHANGES", seed_demo.exchanges_at(url))

    call_command("seed_demo", stdout=StringIO())

    for exchange in Exchange.objects.all():
        assert exchange.ws_url.startswith("ws://simulator:8765/")
        exchange.full_clean()  # ws:// and a host that is a compose service name
    assert Exchange.objects.get(slug="binance").rest_url == "http://simulator:8765/binance"
