"""The header's preferences: the theme and the clock, kept on the user and applied to each page."""

import re

import pytest
from django.urls import reverse

from arbsite.models import Preferences
from arbsite.templatetags.preferences import moment
from tests.factories import TradeFactory

pytestmark = pytest.mark.django_db


def html_tag(html: str) -> str:
    return re.search(r"<html[^>]*>", html).group(0)


def test_a_new_user_follows_the_system_theme_and_reads_utc(viewer, venues):
    html = viewer.get(reverse("dashboard")).content.decode()

    assert html_tag(html) == '<html lang="en" data-theme="auto" data-clock="utc">'


def test_a_choice_is_kept_on_the_user_and_applied_to_the_next_page(viewer, venues):
    response = viewer.post(
        reverse("preferences"), {"theme": "dark", "clock": "local", "next": "/trades/?mode=paper"}
    )

    assert response.status_code == 302 and response.url == "/trades/?mode=paper"
    user = response.wsgi_request.user
    assert (user.preferences.theme, user.preferences.clock) == ("dark", "local")
    html = viewer.get(reverse("portfolio")).content.decode()
    assert html_tag(html) == '<html lang="en" data-theme="dark" data-clock="local">'
    assert '<option value="dark" selected>' in html


def test_a_second_choice_changes_the_same_row(viewer, venues):
    viewer.post(reverse("preferences"), {"theme": "dark", "clock": "local"})
    viewer.post(reverse("preferences"), {"theme": "light", "clock": "utc"})

    assert list(Preferences.objects.values_list("theme", "clock")) == [("light", "utc")]


@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example/", ""])
def test_going_back_never_leaves_the_site(viewer, venues, back):
    response = viewer.post(reverse("preferences"), {"theme": "dark", "clock": "utc", "next": back})

    assert response.url == reverse("dashboard")


def test_a_choice_that_is_not_offered_changes_nothing_and_says_so(viewer, venues):
    response = viewer.post(reverse("preferences"), {"theme": "neon", "clock": "utc"}, follow=True)

    assert "not one of the choices" in response.content.decode()
    assert not Preferences.objects.exists()


def test_preferences_need_a_login_and_a_post(client, viewer):
    assert viewer.get(reverse("preferences")).status_code == 405
    viewer.logout()
    response = viewer.post(reverse("preferences"), {"theme": "dark", "clock": "utc"})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_every_time_is_written_in_utc_for_the_pages_script_to_set_to_the_users_clock(
    viewer, venues
):
    trade = TradeFactory()

    html = viewer.get(reverse("trades")).content.decode()

    assert moment(trade.created_at) in html
    assert re.search(
        r'<time datetime="\d{4}-\d\d-\d\dT[\d:.]+\+00:00" data-shown="day">'
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>",
        str(moment(trade.created_at)),
    )
    assert moment(None) == ""
