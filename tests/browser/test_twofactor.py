"""Two-factor login in a real Chromium, on the desk test_desk.py starts: the administrator sets up
an authenticator app at the first login (QR code and key), later logs in with a code, and a
wrong code opens nothing."""

import re
import time
from base64 import b32decode

import test_desk
from django_otp.oath import TOTP
from playwright.sync_api import Browser, Page, expect
from test_desk import PASSWORD

pytestmark = test_desk.pytestmark
# test_desk's fixtures: a running desk (migrated, seeded) and Chromium, one of each per module.
desk, chromium, browser = test_desk.desk, test_desk.chromium, test_desk.browser

# username -> the authenticator key set up in this module's desk (a desk starts with none).
KEYS: dict[str, str] = {}


def totp(key: str, steps_ahead: int = 0) -> str:
    """What an authenticator app holding `key` shows now, or `steps_ahead` 30-second steps on."""
    token = TOTP(b32decode(key))
    token.time = time.time() + 30 * steps_ahead
    return f"{token.token():06d}"


def after_password(browser: Browser, desk: str, username: str) -> Page:
    """A new browser that has given the right password; the console's errors in `page.errors`."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    page.errors = []
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{desk}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def enrol(page: Page, username: str) -> None:
    """Set up the authenticator on the enrolment page with the key it shows in text."""
    key = page.locator("#otp-key").inner_text().replace(" ", "")
    page.get_by_label("First code from the app").fill(totp(key))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    KEYS[username] = key


def enrolled_key(browser: Browser, desk: str, username: str) -> str:
    if username not in KEYS:
        page = after_password(browser, desk, username)
        enrol(page, username)
        page.context.close()
    return KEYS[username]


def test_the_administrator_sets_up_an_authenticator_at_the_first_login(browser, desk):
    page = after_password(browser, desk, "admin")

    expect(page).to_have_url(re.compile(r"/login/enrol/\?next=%2F$"))
    expect(page.locator("figure.qr svg")).to_be_visible()
    expect(page.locator(".otp-uri")).to_contain_text("otpauth://totp/Arbitrage%20desk%3Aadmin")
    enrol(page, "admin")
    page.get_by_role("link", name="Continue to the desk").click()

    expect(page).to_have_url(f"{desk}/")
    page.goto(f"{desk}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    assert not [e for e in page.errors if "Content Security Policy" in e]


def test_the_administrator_logs_in_with_a_code_from_the_app(browser, desk):
    key = enrolled_key(browser, desk, "admin")
    page = after_password(browser, desk, "admin")
    expect(page).to_have_url(re.compile(r"/login/code/"))

    # The setting-up used this step's code and each code is accepted once: the app's next one
    # is within the desk's tolerance of one step.
    page.get_by_label("Code").fill(totp(key, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{desk}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.goto(f"{desk}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_a_wrong_code_is_refused_and_opens_neither_the_desk_nor_the_admin(browser, desk):
    key = enrolled_key(browser, desk, "admin")
    page = after_password(browser, desk, "admin")
    valid = {totp(key, steps) for steps in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)

    page.get_by_label("Code").fill(wrong)
    page.get_by_role("button", name="Verify").click()

    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.goto(f"{desk}/admin/")
    expect(page).to_have_url(re.compile(r"/login/code/\?next=%2Fadmin%2F$"))
    page.goto(f"{desk}/trades/")
    expect(page).to_have_url(re.compile(r"/login/code/\?next=%2Ftrades%2F$"))
