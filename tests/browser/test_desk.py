"""The real desk in a real Chromium: live spreads, opportunities, the kill switch, filters.

Starts `manage.py run_desk` (web, engine and simulated venues in one process) on a fresh database
of the tests' PostgreSQL server (the embedded one by default), and drives Debian's
/usr/bin/chromium through Playwright.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-desk-2026"
ARTIFACTS = ROOT / "artifacts"
NO_PRICE = "\u2013"  # the en dash a venue without a book shows

# A newcomer's machine may lack Debian's chromium; CI (CI=true) installs it, so there it must run.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """The base URL of a running desk; its log is printed if it fails to start."""
    tmp = tmp_path_factory.mktemp("desk")
    with fresh_database(f"{connection.settings_dict['NAME']}_{tmp.name}") as url:
        yield from serve_desk(tmp, url)


def serve_desk(tmp: Path, database_url: str):
    """Migrate and seed the database at `database_url`, then serve a desk on it until closed."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "1",
        "DEMO_PASSWORD": PASSWORD,
        # The trader and viewer log in here with the password alone: the second factor, which
        # accepts each code once, is driven in test_twofactor.py (as the admin).
        "OTP_REQUIRED_ROLES": "Administrator",
        "PYTHONUNBUFFERED": "1",
    }
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "createcachetable")
    manage(env, "seed_demo")
    port, sim_port = free_port(), free_port()
    log = (tmp / "desk.log").open("w+")
    ports = ["--port", str(port), "--sim-port", str(sim_port)]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_desk", "--host", "127.0.0.1", *ports],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_until_serving(base: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    log.seek(0)
    pytest.fail(f"run_desk did not start:\n{log.read()[-4000:]}")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def logged_in(browser: Browser, desk: str, username: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    page.goto(f"{desk}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{desk}/")
    return page


def spread_prices(page: Page) -> str:
    return page.locator("#spread-BTC-USD tbody").inner_text()


def test_trader_sees_the_spread_table_change_without_a_reload(browser, desk):
    page = logged_in(browser, desk, "trader")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#spread-BTC-USD tbody td.num").first).not_to_have_text(NO_PRICE)
    first = spread_prices(page)

    deadline = time.monotonic() + 20
    while spread_prices(page) == first and time.monotonic() < deadline:
        page.wait_for_timeout(200)

    assert spread_prices(page) != first
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#live-status")).to_contain_text("updated")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert not [e for e in page.errors if "Content Security Policy" in e]


def test_an_opportunity_appears_on_the_dashboard(browser, desk):
    page = logged_in(browser, desk, "trader")
    page.evaluate("window.notReloaded = true")

    opportunity = page.locator("#open-opportunities a[href^='/opportunities/']").first
    history = page.locator("#recent-trades a[href*='trade=']").first
    # Either will do; both may be there by then (`.first`: strict mode refuses two).
    expect(opportunity.or_(history).first).to_be_visible(timeout=60_000)

    assert page.evaluate("window.notReloaded") is True


def test_trader_throws_and_resets_the_kill_switch(browser, desk):
    page = logged_in(browser, desk, "trader")

    page.locator("#desk-status").get_by_role("link", name="Throw kill switch…").click()
    page.get_by_label("Reason").fill("browser test")
    page.get_by_role("button", name="Throw the kill switch").click()
    expect(page.locator("#desk-status")).to_contain_text("Kill switch ON")
    expect(page.locator("#desk-status")).to_contain_text("browser test")

    page.locator("#desk-status").get_by_role("link", name="Reset kill switch…").click()
    page.get_by_role("button", name="Reset the kill switch").click()
    expect(page.locator("#desk-status")).to_contain_text("Kill switch off")


def test_trader_switches_automatic_execution_and_a_pushed_switch_works_too(browser, desk):
    watcher = logged_in(browser, desk, "trader")
    page = logged_in(browser, desk, "trader")
    expect(watcher.locator("#live-status")).to_have_attribute("data-state", "live")
    watcher.evaluate("window.notReloaded = true")

    page.get_by_role("button", name="Switch automatic execution off").click()
    expect(page.locator(".messages")).to_contain_text("Automatic execution off.")
    expect(page.locator("#controls")).to_contain_text("Automatic execution is off")

    # The other trader's page is pushed the new controls: a form rendered for every trader, with
    # no token of its own, which htmx posts with the page's.
    pushed = watcher.get_by_role("button", name="Switch automatic execution on")
    expect(pushed).to_be_visible()
    assert watcher.evaluate("window.notReloaded") is True
    pushed.click()
    expect(watcher.locator(".messages")).to_contain_text("Automatic execution on.")
    expect(watcher.locator("#controls")).to_contain_text("Automatic execution is on")


def test_viewer_is_refused_the_kill_switch(browser, desk):
    page = logged_in(browser, desk, "viewer")
    expect(page.locator("#desk-status")).to_contain_text("Kill switch off")
    expect(page.get_by_role("link", name="Throw kill switch…")).to_have_count(0)

    response = page.goto(f"{desk}/risk/kill-switch/")

    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_trades_filter_updates_the_results_in_place(browser, desk):
    page = logged_in(browser, desk, "trader")
    page.goto(f"{desk}/trades/")
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Mode").select_option("live")

    expect(page).to_have_url(re.compile(r"mode=live"))
    expect(page.locator("#results caption")).to_have_text(re.compile(r"^0 trades"))
    expect(page.locator("#results")).to_contain_text("No trades match.")
    assert page.evaluate("window.notReloaded") is True


def test_the_venue_table_shows_order_ack_figures_once_the_desk_has_traded(browser, desk):
    # The demo's paper profile executes automatically; each order is timed, and each engine
    # heartbeat pushes the venue table with the figures over the profile's window.
    page = logged_in(browser, desk, "viewer")
    page.evaluate("window.notReloaded = true")
    table = page.locator("#venue-health")
    expect(table).to_contain_text("Order ack p50 / p99, last 100")

    figures = re.compile(r"[\d.]+ / [\d.]+ ms \(\d+ orders?\)")
    expect(table.locator("tbody")).to_contain_text(figures, timeout=120_000)

    assert page.evaluate("window.notReloaded") is True
    ARTIFACTS.mkdir(exist_ok=True)
    table.screenshot(path=str(ARTIFACTS / "venue-ack.png"))
