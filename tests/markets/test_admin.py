"""The exchange-credential admin never shows a stored key back, whatever the viewer may do."""

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.urls import reverse

from arbsite.roles import ADMINISTRATOR
from markets.models import ExchangeCredential
from tests.factories import ExchangeFactory

pytestmark = pytest.mark.django_db

STORED = {"api_key": "STORED-API-KEY-123", "secret": "STORED-SECRET-456", "passphrase": "PP-789"}


@pytest.fixture
def credential(settings) -> ExchangeCredential:
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    credential = ExchangeCredential(exchange=ExchangeFactory(slug="kraken"))
    credential.set_keys(**STORED)
    credential.save()
    return credential


def staff_with(user_with_role, role: str | None, codenames: list[str]):
    user = user_with_role(role)
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="markets", codename__in=codenames)
    )
    return user


@pytest.mark.parametrize(
    ("role", "codenames"),
    [
        (None, ["view_exchangecredential"]),
        (None, ["view_exchangecredential", "change_exchangecredential"]),
        (ADMINISTRATOR, []),
    ],
    ids=["view only", "view and change", "administrator"],
)
@pytest.mark.parametrize("page", ["change", "history", "changelist"])
def test_no_credential_admin_page_shows_a_stored_key(
    client, user_with_role, credential, role, codenames, page
):
    client.force_login(staff_with(user_with_role, role, codenames))
    args = [] if page == "changelist" else [credential.pk]

    response = client.get(reverse(f"admin:markets_exchangecredential_{page}", args=args))

    assert response.status_code == 200
    html = response.content.decode()
    assert str(credential.exchange) in html  # the credential itself is on the page
    assert [value for value in STORED.values() if value in html] == []


def test_the_view_only_page_lists_no_key_field_to_type_into(client, user_with_role, credential):
    client.force_login(staff_with(user_with_role, None, ["view_exchangecredential"]))

    response = client.get(reverse("admin:markets_exchangecredential_change", args=[credential.pk]))

    html = response.content.decode().lower()
    assert "why this key may withdraw" in html
    assert ("api key" in html, "passphrase" in html) == (False, False)
