"""The Docker image and its compose stack: static files built as the Dockerfile builds them serve
pages without debug, the web's health check asks for a page, and Redis keeps the broker's queue."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_STATIC = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def runtime_stage() -> list[str]:
    """The Dockerfile's last stage, one instruction a line (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return [line for line in lines[last_from:] if not line.startswith("#")]


def collectstatic_step() -> tuple[list[str], dict[str, str]]:
    """The image's collectstatic command and the environment it runs in (its ENV and the
    variables set on that RUN line only), with nothing from the test's own environment."""
    stage = runtime_stage()
    env = {"PATH": os.environ["PATH"]}
    for line in stage:
        if line.startswith("ENV "):
            env.update(word.split("=", 1) for word in shlex.split(line[4:]))
    (run,) = [line[4:] for line in stage if line.startswith("RUN ") and "collectstatic" in line]
    words = shlex.split(run)
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "python"
    return [sys.executable, *words[1:]], env


def copy_as_the_image_does(target: Path) -> Path:
    """`COPY . .` of the build context: the tree without what .dockerignore leaves out."""
    ignored = {
        line.strip().removeprefix("**/").strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    app = target / "app"
    shutil.copytree(ROOT, app, ignore=lambda _dir, names: [n for n in names if n in ignored])
    return app


@pytest.fixture(scope="module")
def image_static_root(tmp_path_factory) -> Path:
    app = copy_as_the_image_does(tmp_path_factory.mktemp("image"))
    command, env = collectstatic_step()

    result = subprocess.run(command, cwd=app, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    return app / "staticfiles"


@pytest.fixture
def production_static(settings, image_static_root):
    settings.DEBUG = False
    settings.STATIC_ROOT = image_static_root
    settings.STORAGES = PRODUCTION_STATIC


def compose_service(name: str) -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]


def web_health_check_requests() -> list[tuple[str, dict[str, str]]]:
    """(path, headers) of each request the web service's compose health check makes."""
    test = compose_service("web")["healthcheck"]["test"]
    command = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
    requests = []
    for curl in command.split("&&"):
        words = shlex.split(curl)
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        (url,) = [word for word in words if word.startswith("http://")]
        requests.append((re.sub(r"^http://[^/]+", "", url), headers))
    return requests


def test_image_builds_its_static_files_without_debug_and_with_no_real_secret():
    command, env = collectstatic_step()

    assert command[1:] == ["manage.py", "collectstatic", "--no-input"]
    assert env.get("DJANGO_DEBUG", "0") in {"", "0"}
    assert env["DJANGO_SECRET_KEY"] not in (ROOT / ".env.example").read_text()
    assert "DJANGO_SECRET_KEY" not in " ".join(line for line in runtime_stage() if "ENV " in line)


def test_image_copies_no_env_file_database_or_virtualenv():
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".env", ".venv/", "var/", ".git/"} <= set(ignored)


@pytest.mark.django_db
def test_login_page_from_the_images_static_build_answers_200_with_a_hashed_stylesheet(
    client, production_static, image_static_root
):
    response = client.get("/login/")

    html = response.content.decode()
    assert response.status_code == 200
    stylesheet = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', html)
    assert stylesheet, html
    assert client.get(stylesheet.group(1)).status_code == 200


@pytest.mark.django_db
def test_web_health_check_asks_for_a_page_as_well_as_healthz(client, production_static):
    requests = web_health_check_requests()

    paths = [path for path, _headers in requests]
    assert "/healthz" in paths and "/login/" in paths
    for path, headers in requests:
        assert client.get(path, headers=headers).status_code == 200, path


def start_compose_redis(data_dir: Path, port: int) -> subprocess.Popen:
    """redis-server with compose's command, its working directory standing for the /data volume."""
    command = compose_service("redis")["command"]
    server = subprocess.Popen(
        [shutil.which(command[0]), *command[1:], "--port", str(port), "--bind", "127.0.0.1"],
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_compose_redis_keeps_the_broker_queue_across_a_restart(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_compose_redis(tmp_path, port)
    redis.Redis(port=port).lpush("celery", "execute_opportunity 42")
    server.send_signal(signal.SIGTERM)  # what `docker compose restart` sends
    server.wait(10)

    server = start_compose_redis(tmp_path, port)
    try:
        queued = redis.Redis(port=port).lrange("celery", 0, -1)
    finally:
        server.kill()
        server.wait(10)

    assert queued == [b"execute_opportunity 42"]
    assert any(volume.endswith(":/data") for volume in compose_service("redis")["volumes"])
