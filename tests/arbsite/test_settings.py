"""Settings come from the environment, with clear errors and safe production defaults."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from arbsite.settings import database_from_url, env_bool

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-production-secret-value-for-checks-only-0123",
    "DJANGO_ALLOWED_HOSTS": "desk.example.com",
    "PATH": os.environ["PATH"],
}


def run_manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "must be postgres://"),
        ("sqlite:///var/db.sqlite3", "must be postgres://"),
        ("not a url", "not a valid database URL"),
        ("postgres://postgres@127.0.0.1:5432", "names no database"),
    ],
)
def test_bad_database_url_gives_a_clear_error(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database_from_url(url)


def test_postgres_url_selects_psycopg_backend():
    config = database_from_url("postgres://desk:pw@db.internal:5433/desk")

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "desk")


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "perhaps")

    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG must be a boolean"):
        env_bool("SOME_FLAG")


def test_site_refuses_to_start_without_debug_on_the_default_secret():
    result = run_manage("check", env={"PATH": os.environ["PATH"]})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_check_deploy_passes_with_production_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_example_lists_every_variable_the_code_reads():
    apps = ("arbsite", "markets", "trading", "risk", "portfolio")
    code = "\n".join(p.read_text() for app in apps for p in (ROOT / app).rglob("*.py"))
    reader = r"(?:os\.environ(?:\.get)?[\[(]|env_list\(|env_bool\()\"([A-Z_]+)\""
    read = set(re.findall(reader, code))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))

    assert read - {"DJANGO_SETTINGS_MODULE"} <= listed


def test_compose_defines_the_full_stack_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"postgres", "redis", "web", "engine", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "engine", "worker"):
        assert "healthcheck" in services[name], name
    assert services["engine"]["command"][-1] == "run_arbitrage"
