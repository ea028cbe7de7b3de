"""The real desk in a real Chromium: live spreads, opportunities, the kill switch, filters.

Starts `manage.py run_desk` (web, engine and simulated venues in one process) on a fresh database
of the tests' PostgreSQL server (the embedded one by default), and drives Debian's
/usr/bin/chromium through Playwright.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-desk-2026"
ARTIFACTS = ROOT / "artifacts"
NO_PRICE = "\u2013"  # the en dash a venue without a book shows
# As the pages' own default (`logged_in`): on a loaded CI machine an htmx swap or a push took
# longer than expect's 5 s.
expect.set_options(timeout=20_000)
# A user who may see the desk but not its trades: no trade notification may reach their page.
# And limits the demo desk does not stop itself at while the pages are driven (a run of hedged
# trades on a loaded machine would trip the kill switch under the tests' feet).
SETUP = f"""
from django.contrib.auth.models import Permission, User
from risk.models import RiskProfile
user = User.objects.create_user("blind", password="{PASSWORD}")
user.user_permissions.add(Permission.objects.get(codename="view_desk"))
RiskProfile.objects.update(max_consecutive_failures=1_000_000, max_daily_loss=10**9)
"""

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
        # An open page's socket re-checks its login every 2 s (the default is 30 s); at every
        # push, the checks queued behind the renders and late notices failed on a loaded CI.
        "SOCKET_RECHECK_S": "2",
        "PYTHONUNBUFFERED": "1",
    }
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "createcachetable")
    manage(env, "seed_demo")
    manage(env, "shell", "-c", SETUP)
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
def chromium():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium):
    """The module's Chromium; the pages a test opened are closed after it. Left open, every
    earlier test's live dashboards kept rendering pushes, and by the module's end fifteen of them
    starved the page under test (a select that stayed unanswered for 20 s on a loaded CI)."""
    yield chromium
    for context in chromium.contexts:
        context.close()


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


def screenshot(element, path: Path) -> None:
    """`element`'s screenshot; a live push that replaces it meanwhile gets the new one shot."""
    for attempt in range(3):
        try:
            element.screenshot(path=str(path))
            return
        except PlaywrightError:
            if attempt == 2:
                raise


def spread_prices(page: Page) -> str:
    return page.locator("#spread-BTC-USD tbody").inner_text()


def session_notifications(page: Page) -> list[str]:
    """The texts of every notification this tab's session kept (static/js/notices.js)."""
    return page.evaluate(
        "JSON.parse(sessionStorage.getItem('desk-notifications') || '[]').map(n => n.text)"
    )


def reset_if_tripped(page: Page) -> None:
    """Reset the kill switch when the demo desk tripped it (a run of hedged trades does)."""
    page.goto(page.url)
    reset = page.locator("#desk-status").get_by_role("link", name="Reset kill switch…")
    if reset.count():
        reset.click()
        page.get_by_role("button", name="Reset the kill switch").click()


def throw_kill_switch(page: Page, reason: str) -> None:
    reset_if_tripped(page)
    page.locator("#desk-status").get_by_role("link", name="Throw kill switch…").click()
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Throw the kill switch").click()


# The demo desk trades from its start; these two come first, before a run of losses can hold it
# at a limit for the rest of the module.
def test_a_trade_closed_by_the_worker_is_a_notification_only_where_trades_may_be_seen(
    browser, desk
):
    watcher = logged_in(browser, desk, "trader")
    operator = logged_in(browser, desk, "trader")
    blind = logged_in(browser, desk, "blind")
    expect(blind.locator("#live-status")).to_have_attribute("data-state", "live")
    watcher.evaluate("window.notReloaded = true")

    closed = watcher.locator("#notice-stack .notice", has_text=re.compile(r"Trade #\d+ .*closed"))
    deadline = time.monotonic() + 180
    while not closed.count() and time.monotonic() < deadline:
        reset_if_tripped(operator)  # so the desk keeps trading
        watcher.wait_for_timeout(1000)
    expect(closed.first).to_be_visible()
    assert watcher.evaluate("window.notReloaded") is True

    # The blind page hears what it may see (the kill switch), and never a trade.
    throw_kill_switch(operator, "notification test")
    thrown = blind.locator("#notice-stack .notice-error", has_text="notification test")
    expect(thrown).to_be_visible(timeout=20_000)
    assert not [text for text in session_notifications(blind) if text.startswith("Trade #")]
    reset_if_tripped(operator)
    reset = blind.locator("#notice-stack .notice", has_text="Kill switch reset")
    expect(reset.first).to_be_visible(timeout=20_000)


def test_the_tab_title_counts_open_opportunities_and_marks_the_kill_switch(browser, desk):
    watcher = logged_in(browser, desk, "viewer")
    operator = logged_in(browser, desk, "trader")
    watcher.goto(f"{desk}/trades/")  # a page that shows no opportunity: the title still counts
    watcher.evaluate("window.notReloaded = true")

    # (Playwright's expect, not wait_for_function: the CSP refuses the eval that needs.)
    expect(watcher).to_have_title(re.compile(r"^(\u26D4 )?\(\d+\) Trades"), timeout=90_000)

    throw_kill_switch(operator, "title test")
    expect(watcher).to_have_title(re.compile(r"^\u26D4 "), timeout=20_000)
    reset_if_tripped(operator)
    expect(watcher).not_to_have_title(re.compile(r"^\u26D4"), timeout=20_000)
    assert watcher.evaluate("window.notReloaded") is True


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
    screenshot(table, ARTIFACTS / "venue-ack.png")


def test_an_error_notification_stays_until_dismissed_and_the_list_reopens(browser, desk):
    operator = logged_in(browser, desk, "trader")
    watcher = logged_in(browser, desk, "trader")
    expect(watcher.locator("#live-status")).to_have_attribute("data-state", "live")

    throw_kill_switch(operator, "stays until dismissed")
    error = watcher.locator("#notice-stack .notice-error", has_text="stays until dismissed")
    expect(error).to_be_visible(timeout=20_000)
    expect(error).to_have_attribute("role", "alert")

    watcher.reload()  # an error nobody dismissed follows the user to the next page
    expect(error).to_be_visible()
    error.get_by_role("button", name="Dismiss").click()
    expect(error).to_have_count(0)
    watcher.reload()
    expect(error).to_have_count(0)

    watcher.get_by_role("button", name=re.compile(r"^Notifications \(\d+\)")).click()
    expect(watcher.locator("#notice-history")).to_contain_text("stays until dismissed")
    assert not [e for e in watcher.errors if "Content Security Policy" in e]
    reset_if_tripped(operator)


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def choose(page: Page, theme: str, clock: str) -> None:
    page.locator("#pref-theme").select_option(theme)
    page.locator("#pref-clock").select_option(clock)
    page.get_by_role("button", name="Keep").click()
    expect(page.locator("html")).to_have_attribute("data-theme", theme)


def test_the_dark_theme_follows_the_system_and_the_users_choice_is_kept(browser, desk):
    dark_system = browser.new_context(color_scheme="dark").new_page()
    dark_system.goto(f"{desk}/login/")
    assert background(dark_system) == "rgb(13, 17, 23)"  # --bg, dark
    page = logged_in(browser, desk, "risk")

    choose(page, "dark", "utc")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert background(page) == "rgb(13, 17, 23)"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-dark.png"), full_page=True)
    page.goto(f"{desk}/trades/")  # kept for the next page
    assert background(page) == "rgb(13, 17, 23)"

    choose(page, "light", "utc")
    page.goto(f"{desk}/")
    assert background(page) == "rgb(255, 255, 255)"
    page.screenshot(path=str(ARTIFACTS / "dashboard-light.png"), full_page=True)
    assert not [e for e in page.errors if "Content Security Policy" in e]
    dark_system.context.close()


def test_a_user_who_chose_local_time_reads_every_time_on_the_browsers_clock(browser, desk):
    # UTC+05:30, so every time moves; the trades were closed by the desk in the tests above.
    watcher = browser.new_context(timezone_id="Asia/Kolkata").new_page()
    watcher.goto(f"{desk}/login/")
    watcher.get_by_label("Username").fill("viewer")
    watcher.get_by_label("Password").fill(PASSWORD)
    watcher.get_by_role("button", name="Log in").click()
    choose(watcher, "auto", "local")
    watcher.goto(f"{desk}/trades/")
    first = watcher.locator("#results time").first
    expect(first).to_have_text(re.compile(r" local$"))
    utc = first.get_attribute("title")
    assert utc.endswith(" UTC") and utc[:16] != first.inner_text()[:16]

    choose(watcher, "auto", "utc")
    watcher.goto(f"{desk}/trades/")
    expect(watcher.locator("#results time").first).to_have_text(re.compile(r" UTC$"))
    watcher.context.close()


def test_logging_out_in_another_tab_sends_the_open_page_to_the_login(browser, desk):
    page = logged_in(browser, desk, "viewer")
    other = page.context.new_page()
    other.goto(f"{desk}/trades/")

    other.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/login/"), timeout=20_000)  # at the next push
    expect(page.get_by_label("Username")).to_be_visible()


class Link:
    """A TCP relay to the desk that can go down as a network does: its connections cut with no
    close frame, new ones refused, until it comes back up."""

    def __init__(self, desk: str) -> None:
        self.target = ("127.0.0.1", int(desk.rsplit(":", 1)[1]))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def go_down(self) -> None:
        self.up = False
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.open = []

    def close(self) -> None:
        self.go_down()
        self.listener.close()


def test_a_page_whose_socket_dropped_while_its_login_ended_goes_to_the_login(browser, desk):
    """The socket drops without the 4401 close (the network went away) and the login ends
    meanwhile: the reconnect's handshake is refused, which the browser sees as no close code at
    all, so desk.js asks for the page itself and follows the redirect to the login."""
    link = Link(desk)
    try:
        _dropped_while_logged_out(browser, desk, link)
    finally:
        link.close()


def _dropped_while_logged_out(browser: Browser, desk: str, link: Link) -> None:
    page = logged_in(browser, link.base, "viewer")
    expect(page.locator("#live-status")).to_have_text(re.compile(r"^Live"), timeout=20_000)
    token = page.locator("form[action='/logout/'] input[name=csrfmiddlewaretoken]")
    token = token.get_attribute("value")

    link.go_down()
    status = page.locator("#live-status")
    expect(status).to_have_text(re.compile(r"reconnecting|Connecting"), timeout=20_000)
    # Logged out past the relay (the session cookie is the host's, whatever the port).
    answer = page.context.request.post(
        f"{desk}/logout/",
        form={"csrfmiddlewaretoken": token},
        headers={"Referer": f"{desk}/"},
        max_redirects=0,
    )
    assert answer.status == 302
    link.up = True

    expect(page).to_have_url(re.compile(r"/login/"), timeout=30_000)
    expect(page.get_by_label("Username")).to_be_visible()


def test_the_reports_charts_are_drawn_again_after_a_filter_change(browser, desk):
    page = logged_in(browser, desk, "viewer")
    page.goto(f"{desk}/reports/")
    expect(page.locator("#chart-cumulative canvas")).to_have_count(1)

    page.get_by_label("Period").select_option("30d")  # htmx swaps #results in place

    expect(page).to_have_url(re.compile(r"period=30d"))
    expect(page.locator("#chart-cumulative canvas")).to_have_count(1)
    days = page.evaluate("JSON.parse(document.getElementById('report-data').dataset.chart).days")
    assert len(days) == 30
    assert page.errors == []
