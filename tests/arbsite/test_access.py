"""The role matrix: every page against every role and an anonymous visitor."""

import pytest
from django.urls import reverse

from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER

DESK_PAGES = ["dashboard", "opportunities", "trades", "reports", "portfolio"]
ALL_ROLES = [VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR]

# page -> roles that may open it; an authenticated user outside them gets 403.
MATRIX = {page: ALL_ROLES for page in DESK_PAGES}
MATRIX["admin:index"] = [RISK_MANAGER, ADMINISTRATOR]
MATRIX["admin:risk_riskprofile_changelist"] = [RISK_MANAGER, ADMINISTRATOR]
MATRIX["admin:risk_riskprofile_add"] = [RISK_MANAGER, ADMINISTRATOR]
MATRIX["admin:auth_user_changelist"] = [ADMINISTRATOR]
MATRIX["admin:markets_exchange_add"] = [ADMINISTRATOR]
MATRIX["password_change"] = [*ALL_ROLES, None]


def _staff(role):
    return role in (RISK_MANAGER, ADMINISTRATOR)


@pytest.mark.parametrize("page", list(MATRIX))
@pytest.mark.parametrize("role", [*ALL_ROLES, None, "anonymous"])
def test_role_matrix(client, user_with_role, page, role):
    url = reverse(page)
    if role != "anonymous":
        user = user_with_role(role)
        user.is_staff = _staff(role)
        user.save()
        client.force_login(user)

    response = client.get(url)

    if role == "anonymous":
        assert response.status_code == 302
        assert "login" in response["Location"]
    elif role in MATRIX[page]:
        assert response.status_code == 200
    elif page.startswith("admin:") and not _staff(role):
        assert response.status_code == 302  # the admin sends non-staff to its own login
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (VIEWER, ["/trades/", "/reports/"], ["/admin/"]),
        (RISK_MANAGER, ["/trades/", "/admin/"], []),
    ],
)
def test_navigation_shows_only_what_the_role_may_use(client, user_with_role, role, visible, hidden):
    user = user_with_role(role)
    user.is_staff = _staff(role)
    user.save()
    client.force_login(user)

    html = client.get("/").content.decode()

    for href in visible:
        assert f'href="{href}"' in html
    for href in hidden:
        assert f'href="{href}"' not in html


def test_user_without_role_sees_no_desk_links(client, user_with_role):
    client.force_login(user_with_role(None))

    html = client.get(reverse("password_change")).content.decode()

    assert 'href="/trades/"' not in html


@pytest.mark.django_db
def test_login_page_logs_in_and_lands_on_dashboard(client, user_with_role):
    user = user_with_role(VIEWER)

    response = client.post(
        reverse("login"), {"username": user.username, "password": "pw-for-tests-1"}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert response.context["user"] == user


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account_even_with_the_right_password(
    client, user_with_role, settings
):
    user = user_with_role(VIEWER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"})

    response = client.post(
        reverse("login"), {"username": user.username, "password": "pw-for-tests-1"}
    )

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_logout_requires_post_and_ends_the_session(client, user_with_role):
    client.force_login(user_with_role(VIEWER))

    client.post(reverse("logout"))

    assert client.get("/").status_code == 302
