"""The desk's risk controls: who may throw and reset the kill switch and switch auto-execution."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from arbsite import live
from arbsite.access import OPERATE, VIEW
from arbsite.pages.fragments import TOPICS
from arbsite.roles import RISK_MANAGER, TRADER, VIEWER
from portfolio.models import Mode
from risk import checks
from risk.models import KillSwitch, RiskProfile
from trading.execution.desk import execution_refusals

THROW = reverse("risk:kill_switch")
RESET = reverse("risk:kill_switch_reset")
AUTO = reverse("risk:auto_execution")


def logged_in(client, user_with_role, role):
    client.force_login(user_with_role(role))
    return client


@pytest.mark.parametrize("url", [THROW, RESET, AUTO])
def test_a_viewer_is_refused_every_control(client, user_with_role, desk, url):
    logged_in(client, user_with_role, VIEWER)

    response = client.post(url, {"reason": "no", "on": "0"})

    assert response.status_code == 403
    assert not KillSwitch.current().is_on
    assert RiskProfile.objects.get().auto_execute is True


def test_an_anonymous_visitor_is_sent_to_log_in(client, desk):
    response = client.post(THROW, {"reason": "no"})

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_a_trader_throws_the_switch_with_a_reason_through_the_csrf_protected_form(
    user_with_role, desk, django_capture_on_commit_callbacks
):
    _, opportunity = desk
    client = logged_in(Client(enforce_csrf_checks=True), user_with_role, TRADER)
    page = client.get(THROW)
    token = page.cookies["csrftoken"].value

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(THROW, {"reason": "venue outage", "csrfmiddlewaretoken": token})

    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    assert response.status_code == 302
    switch = KillSwitch.current()
    assert (switch.is_on, switch.reason, switch.automatic) == (True, "venue outage", False)
    assert execution_refusals(opportunity, mode=Mode.PAPER) == [checks.KILL_SWITCH]


def test_a_post_without_the_csrf_token_is_refused(user_with_role, desk):
    client = logged_in(Client(enforce_csrf_checks=True), user_with_role, TRADER)

    response = client.post(THROW, {"reason": "forged"})

    assert response.status_code == 403
    assert not KillSwitch.current().is_on


def test_throwing_needs_a_reason(client, user_with_role, desk):
    logged_in(client, user_with_role, TRADER)

    response = client.post(THROW, {"reason": "  "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not KillSwitch.current().is_on


def test_a_trader_resets_the_switch_and_the_page_then_offers_to_throw_it(
    client, user_with_role, desk
):
    logged_in(client, user_with_role, TRADER)
    client.post(THROW, {"reason": "drill"})
    assert "Reset the kill switch" in client.get(THROW).content.decode()

    response = client.post(RESET, {"next": "/opportunities/"})

    assert response.status_code == 302
    assert response["Location"] == "/opportunities/"
    assert not KillSwitch.current().is_on


def test_an_offsite_next_is_ignored(client, user_with_role, desk):
    logged_in(client, user_with_role, TRADER)

    response = client.post(RESET, {"next": "https://evil.example/"})

    assert response["Location"] == reverse("dashboard")


def test_a_trader_switches_automatic_execution_off_and_on(client, user_with_role, desk):
    logged_in(client, user_with_role, TRADER)

    client.post(AUTO, {"on": "0"})
    assert RiskProfile.objects.get().auto_execute is False
    client.post(AUTO, {"on": "1"})
    assert RiskProfile.objects.get().auto_execute is True
    assert client.post(AUTO, {}).status_code == 400


def test_the_dashboard_switch_offers_the_other_state_and_posts_with_the_pages_token(
    user_with_role, desk
):
    client = logged_in(Client(enforce_csrf_checks=True), user_with_role, TRADER)
    page = client.get(reverse("dashboard")).content.decode()
    # htmx sends the token from the page's <body hx-headers>, as it must for a pushed form.
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_X_CSRFTOKEN": token}

    assert "Switch automatic execution off" in page
    assert "Switch automatic execution on" not in page
    assert client.post(AUTO, {"on": "0"}, HTTP_HX_REQUEST="true").status_code == 403
    response = client.post(AUTO, {"on": "0", "next": reverse("dashboard")}, **htmx)

    # A whole new page, with its message, rather than a page swapped into the form.
    assert (response.status_code, response["HX-Redirect"]) == (200, reverse("dashboard"))
    assert RiskProfile.objects.get().auto_execute is False
    page = client.get(reverse("dashboard")).content.decode()
    assert "Automatic execution off." in page
    assert "Switch automatic execution on" in page


def test_the_pushed_controls_offer_the_switch_to_traders_only_and_carry_no_token(desk):
    [(_, controls)] = TOPICS["controls"]
    for_traders = live.render(controls, "", OPERATE, 0.0)
    for_viewers = live.render(controls, "", VIEW, 0.0)

    assert "Switch automatic execution off" in for_traders
    assert "csrfmiddlewaretoken" not in for_traders  # rendered once for every trader's page
    assert "Automatic execution is <strong>on</strong>" in for_viewers
    assert "Switch automatic execution" not in for_viewers and "<form" not in for_viewers


def test_controls_refuse_get_where_only_post_makes_sense(client, user_with_role, desk):
    logged_in(client, user_with_role, RISK_MANAGER)

    assert client.get(RESET).status_code == 405
    assert client.get(AUTO).status_code == 405
