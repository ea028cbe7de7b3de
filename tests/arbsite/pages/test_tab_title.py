"""The tab title: the open opportunities counted and the kill switch marked, on every page."""

import re

import pytest
from django.urls import reverse

from arbsite.access import VIEW
from arbsite.pages.fragments import FRAGMENTS
from markets import notices
from risk.models import KillSwitch
from tests.factories import OpportunityFactory
from trading.models import Opportunity

pytestmark = pytest.mark.django_db


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_the_title_counts_the_open_opportunities(viewer, venues):
    OpportunityFactory.create_batch(3, market=venues)
    OpportunityFactory(market=venues, state=Opportunity.State.CLOSED)

    html = viewer.get(reverse("trades")).content.decode()

    assert title(html) == "(3) Trades · Arbitrage desk"


def test_the_title_is_marked_while_the_kill_switch_is_on(viewer, venues):
    KillSwitch.throw(reason="venue outage")
    OpportunityFactory(market=venues)

    assert title(viewer.get(reverse("portfolio")).content.decode()) == (
        "⛔ (1) Portfolio · Arbitrage desk"
    )


def test_a_calm_desk_has_the_plain_title(viewer, venues):
    assert title(viewer.get(reverse("dashboard")).content.decode()) == (
        "Dashboard · Arbitrage desk"
    )


def test_an_opportunity_notice_pushes_the_status_the_title_is_read_from(venues):
    """The page's script sets the title from the status bar it is pushed (static/js/desk.js)."""
    desk = next(f for f in FRAGMENTS[notices.OPPORTUNITIES] if f.topic == "desk")
    OpportunityFactory.create_batch(2, market=venues)
    KillSwitch.throw(reason="venue outage")

    html = desk.render("", VIEW, 1.0)

    assert 'id="desk-status"' in html
    assert 'data-open-opportunities="2"' in html and 'data-kill-switch="on"' in html
