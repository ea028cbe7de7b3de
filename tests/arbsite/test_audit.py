"""The audit trail: each audited action leaves exactly one event, and events never change."""

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from arbsite import audit
from arbsite.models import AppendOnlyError, AuditEvent
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from markets.models import ExchangeCredential
from portfolio.models import Mode
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    RiskProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def staff(client, user_with_role, role):
    user = user_with_role(role)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return user


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(e) for e in AuditEvent.objects.all()]
    return events[0]


def test_a_login_is_recorded_with_the_user_and_address(client):
    user = UserFactory()

    client.post(reverse("login"), {"username": user.username, "password": "pw-for-tests-1"})

    event = only_event("login")
    assert (event.user, event.username, event.ip) == (user, user.username, "127.0.0.1")


def test_a_failed_login_is_recorded_with_the_name_tried(client):
    client.post(reverse("login"), {"username": "mallory", "password": "guess"})

    event = only_event("login failed")
    assert (event.user, event.username, event.ip) == (None, "mallory", "127.0.0.1")


def test_a_profile_change_in_the_admin_records_each_changed_field_including_venues(
    client, user_with_role
):
    from tests.risk.test_admin import form_data

    kraken, coinbase = ExchangeFactory(slug="kraken"), ExchangeFactory(slug="coinbase")
    profile = RiskProfileFactory(name="paper desk", max_notional=Decimal(1000))
    profile.allowed_exchanges.set([kraken])
    profile.allowed_markets.set([MarketFactory(symbol="BTC-USD")])
    user = staff(client, user_with_role, RISK_MANAGER)
    data = form_data(profile, max_notional="2500", allowed_exchanges=[kraken.pk, coinbase.pk])

    client.post(reverse("admin:risk_riskprofile_change", args=[profile.pk]), data)

    event = only_event("risk profile changed")
    assert event.user == user
    assert (event.object_type, event.object_id) == ("risk.riskprofile", str(profile.pk))
    assert event.before == {"allowed_exchanges": ["Kraken"], "max_notional": "1000.00000000"}
    assert event.after == {
        "allowed_exchanges": ["Coinbase", "Kraken"],
        "max_notional": "2500.00000000",
    }


def user_form(client, target, **changes) -> dict:
    """The admin's user change form as the browser would post it for `target`, with `changes`."""
    url = reverse("admin:auth_user_change", args=[target.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in {"last_login", "date_joined", "password"}
    }
    data.update(
        groups=[group.pk for group in target.groups.all()],
        user_permissions=[],
        date_joined_0=target.date_joined.strftime("%Y-%m-%d"),
        date_joined_1=target.date_joined.strftime("%H:%M:%S.%f"),
    )
    data.update(changes)
    for flag in ("is_active", "is_staff", "is_superuser"):
        if data.pop(flag, False):
            data[flag] = "on"
    return data


def role_pks(*roles: str) -> list[int]:
    return [Group.objects.get(name=role).pk for role in roles]


def test_a_role_change_in_the_admin_records_the_groups_and_hides_the_password(
    client, user_with_role
):
    staff(client, user_with_role, ADMINISTRATOR)
    target = user_with_role(VIEWER)
    url = reverse("admin:auth_user_change", args=[target.pk])

    response = client.post(url, user_form(client, target, groups=role_pks(TRADER)))

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event("user changed")
    assert (event.before, event.after) == ({"groups": [VIEWER]}, {"groups": [TRADER]})


def test_each_role_granted_or_removed_in_the_admin_records_who_whom_and_which_role(
    client, user_with_role
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    target = user_with_role(VIEWER)
    url = reverse("admin:auth_user_change", args=[target.pk])

    client.post(url, user_form(client, target, groups=role_pks(TRADER, RISK_MANAGER)))

    events = AuditEvent.objects.filter(action__startswith="role ").order_by("id")
    assert [(e.action, e.user, e.object_id, e.before, e.after) for e in events] == [
        ("role granted", administrator, str(target.pk), None, {"role": RISK_MANAGER}),
        ("role granted", administrator, str(target.pk), None, {"role": TRADER}),
        ("role removed", administrator, str(target.pk), {"role": VIEWER}, None),
    ]


def test_the_user_form_has_no_superuser_field(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    target = user_with_role(VIEWER)

    html = client.get(reverse("admin:auth_user_change", args=[target.pk])).content.decode()

    assert 'name="is_superuser"' not in html
    assert 'name="groups"' in html


def test_an_administrator_posting_is_superuser_for_themselves_stays_an_administrator(
    client, user_with_role
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    url = reverse("admin:auth_user_change", args=[administrator.pk])

    response = client.post(url, user_form(client, administrator, is_superuser=True))

    assert response.status_code == 302  # the rest of the form was saved
    administrator.refresh_from_db()
    assert administrator.is_superuser is False
    assert not AuditEvent.objects.filter(after__has_key="is_superuser").exists()


def test_an_administrator_cannot_change_a_superusers_account_or_password(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    root = UserFactory(is_superuser=True, is_staff=True)
    password = {"password1": "Taken-over-2026!", "password2": "Taken-over-2026!"}

    change = client.post(reverse("admin:auth_user_change", args=[root.pk]), {"username": "x"})
    reset = client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {**password, "usable_password": "true"},
    )

    root.refresh_from_db()
    assert (change.status_code, reset.status_code) == (403, 403)
    assert (root.username, root.check_password("Taken-over-2026!")) != ("x", True)
    assert root.check_password("pw-for-tests-1")


def test_an_administrator_cannot_grant_a_permission_they_do_not_hold(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    target = user_with_role(VIEWER)
    beat = Permission.objects.get(codename="change_periodictask")
    url = reverse("admin:auth_user_change", args=[target.pk])

    response = client.post(url, user_form(client, target, user_permissions=[beat.pk]))

    assert response.status_code == 200
    assert "user_permissions" in response.context["adminform"].form.errors
    assert not target.user_permissions.exists()


def test_an_administrator_cannot_give_a_role_a_permission_they_do_not_hold(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    trader = Group.objects.get(name=TRADER)
    held = list(trader.permissions.values_list("pk", flat=True))
    axes = Permission.objects.get(codename="delete_accessattempt")
    url = reverse("admin:auth_group_change", args=[trader.pk])

    response = client.post(url, {"name": TRADER, "permissions": [*held, axes.pk]})

    assert response.status_code == 200
    assert not trader.permissions.filter(pk=axes.pk).exists()


def test_an_administrator_cannot_grant_a_role_whose_permissions_they_do_not_hold(
    client, user_with_role
):
    staff(client, user_with_role, ADMINISTRATOR)
    operators = Group.objects.create(name="Beat operators")
    operators.permissions.add(Permission.objects.get(codename="change_periodictask"))
    target = user_with_role(VIEWER)
    url = reverse("admin:auth_user_change", args=[target.pk])

    response = client.post(url, user_form(client, target, groups=role_pks("Beat operators")))

    assert response.status_code == 200
    assert not target.groups.filter(name="Beat operators").exists()


def exchange_form(exchange, **changes) -> dict:
    names = ["slug", "name", "ws_url", "rest_url", "taker_fee_bps", "maker_fee_bps"]
    data = {name: getattr(exchange, name) for name in names} | {"enabled": "on"}
    return data | changes


def test_an_exchange_change_in_the_admin_records_its_urls_and_fees(client, user_with_role):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    kraken = ExchangeFactory(slug="kraken", ws_url="wss://ws.kraken.com/v2")
    data = exchange_form(kraken, ws_url="wss://ws-auth.kraken.com/v2", taker_fee_bps="40")

    response = client.post(reverse("admin:markets_exchange_change", args=[kraken.pk]), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event("exchange changed")
    assert (event.user, event.object_id) == (administrator, str(kraken.pk))
    assert event.before == {"taker_fee_bps": "10.000", "ws_url": "wss://ws.kraken.com/v2"}
    assert event.after == {"taker_fee_bps": "40.000", "ws_url": "wss://ws-auth.kraken.com/v2"}


def test_an_exchange_added_in_the_admin_is_recorded(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    data = {
        "slug": "bitstamp",
        "name": "Bitstamp",
        "ws_url": "wss://ws.bitstamp.net",
        "rest_url": "",
        "taker_fee_bps": "30",
        "maker_fee_bps": "20",
        "enabled": "on",
    }

    client.post(reverse("admin:markets_exchange_add"), data)

    event = only_event("exchange added")
    assert event.after["ws_url"] == "wss://ws.bitstamp.net"
    assert event.after["taker_fee_bps"] == "30.000"


def market_form(market, listings, **changes) -> dict:
    """The market's change form with its listings inline: `listings` is a list of field dicts."""
    data = {"symbol": market.symbol, "base": market.base, "quote": market.quote, **changes}
    data |= {
        "listings-TOTAL_FORMS": len(listings),
        "listings-INITIAL_FORMS": sum(1 for row in listings if row.get("id")),
        "listings-MIN_NUM_FORMS": 0,
        "listings-MAX_NUM_FORMS": 1000,
    }
    for i, row in enumerate(listings):
        data |= {f"listings-{i}-{name}": value for name, value in row.items()}
        data[f"listings-{i}-market"] = market.pk
    return data


def listing_row(listing, **changes) -> dict:
    row = {
        "id": listing.pk,
        "exchange": listing.exchange_id,
        "venue_symbol": listing.venue_symbol,
        "tick_size": listing.tick_size,
        "lot_size": listing.lot_size,
        "min_notional": listing.min_notional,
        "enabled": "on",
    }
    return row | changes


def test_a_listing_changed_or_added_through_the_markets_inline_is_recorded_with_the_market(
    client, user_with_role
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    market = MarketFactory(symbol="BTC-USD")
    kraken = ListingFactory(market=market, exchange=ExchangeFactory(slug="kraken"))
    coinbase = ExchangeFactory(slug="coinbase")
    rows = [
        listing_row(kraken, tick_size="0.1"),
        {"exchange": coinbase.pk, "venue_symbol": "BTC-USD", "tick_size": "0.01"}
        | {"lot_size": "0.00000001", "min_notional": "0", "enabled": "on"},
    ]

    response = client.post(
        reverse("admin:markets_market_change", args=[market.pk]), market_form(market, rows)
    )

    assert response.status_code == 302, response.context["errors"]
    event = only_event("market changed")
    assert event.user == administrator
    assert event.before["listings.kraken.tick_size"] == "0.0100000000"
    assert event.after["listings.kraken.tick_size"] == "0.1000000000"
    assert event.before["listings.coinbase.venue_symbol"] is None
    assert event.after["listings.coinbase.venue_symbol"] == "BTC-USD"
    assert event.after["exchanges"] == ["Coinbase", "Kraken"]


def test_a_listing_removed_through_the_markets_inline_is_recorded(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    market = MarketFactory(symbol="BTC-USD")
    kraken = ListingFactory(market=market, exchange=ExchangeFactory(slug="kraken"))

    client.post(
        reverse("admin:markets_market_change", args=[market.pk]),
        market_form(market, [listing_row(kraken, DELETE="on")]),
    )

    event = only_event("market changed")
    assert event.before["listings.kraken.venue_symbol"] == "BTC-USD"
    assert event.after["listings.kraken.venue_symbol"] is None


@pytest.fixture
def credentials_key(settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()


KEYS = {
    "new_api_key": "live-key-ABC123",
    "new_secret": "live-secret-XYZ789",
    "new_passphrase": "",
}


def test_adding_a_credential_records_which_keys_were_set_never_their_values(
    client, user_with_role, credentials_key
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    binance = ExchangeFactory(slug="binance")

    response = client.post(
        reverse("admin:markets_exchangecredential_add"), {"exchange": binance.pk, **KEYS}
    )

    assert response.status_code == 302
    event = only_event("exchange credential added")
    assert event.user == administrator
    assert event.after == {
        "api_key_encrypted": audit.HIDDEN,
        "exchange": binance.pk,
        "last_nonce": 0,
        "passphrase_encrypted": audit.HIDDEN,
        "secret_encrypted": audit.HIDDEN,
        "withdrawal_override": "",
        "withdrawal_override_by": "",
    }
    stored = ExchangeCredential.objects.get()
    trail = str(list(AuditEvent.objects.values_list()))
    for secret in ("live-key-ABC123", "live-secret-XYZ789", stored.api_key_encrypted):
        assert secret not in trail


def test_changing_a_credential_records_that_the_keys_changed_never_a_value(
    client, user_with_role, credentials_key
):
    staff(client, user_with_role, ADMINISTRATOR)
    credential = ExchangeCredential(exchange=ExchangeFactory(slug="binance"))
    credential.set_keys(api_key="old-key", secret="old-secret")
    credential.save()
    new = {
        "exchange": credential.exchange_id,
        "new_api_key": "new-key-1",
        "new_secret": "new-secret-1",
    }

    client.post(reverse("admin:markets_exchangecredential_change", args=[credential.pk]), new)

    event = only_event("exchange credential changed")
    hidden = {"api_key_encrypted": audit.HIDDEN, "secret_encrypted": audit.HIDDEN}
    assert (event.before, event.after) == (hidden, hidden)
    credential.refresh_from_db()
    assert (credential.api_key, credential.secret) == ("new-key-1", "new-secret-1")
    assert "new-key-1" not in str(list(AuditEvent.objects.values_list()))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Set CREDENTIALS_KEY (a Fernet key) in the environment before storing"),
        ("not-a-fernet-key", "CREDENTIALS_KEY is not a Fernet key"),
    ],
)
def test_a_credential_without_a_usable_credentials_key_is_a_form_error_and_stores_nothing(
    client, user_with_role, settings, key, message
):
    settings.CREDENTIALS_KEY = key
    staff(client, user_with_role, ADMINISTRATOR)
    binance = ExchangeFactory(slug="binance")

    response = client.post(
        reverse("admin:markets_exchangecredential_add"), {"exchange": binance.pk, **KEYS}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ExchangeCredential.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="exchange credential").exists()


def test_kill_switch_throw_and_reset_are_each_recorded(client, user_with_role):
    trader = user_with_role(TRADER)
    client.force_login(trader)

    client.post(reverse("risk:kill_switch"), {"reason": "exchange outage"})
    client.post(reverse("risk:kill_switch_reset"))

    thrown, reset = only_event("kill switch thrown"), only_event("kill switch reset")
    assert (thrown.user, thrown.ip, thrown.object_type) == (trader, "127.0.0.1", "risk.killswitch")
    assert (thrown.before, thrown.after) == (
        {"is_on": False},
        {"is_on": True, "reason": "exchange outage"},
    )
    assert (reset.before, reset.after) == (
        {"is_on": True, "reason": "exchange outage"},
        {"is_on": False},
    )


def test_automatic_execution_switches_are_recorded(client, user_with_role):
    RiskProfileFactory(name="paper desk", mode=Mode.PAPER, auto_execute=True)
    client.force_login(user_with_role(TRADER))

    client.post(reverse("risk:auto_execution"), {"on": "0"})
    client.post(reverse("risk:auto_execution"), {"on": "0"})

    event = only_event("automatic execution off")
    assert (event.before, event.after) == ({"auto_execute": True}, {"auto_execute": False})


def test_record_keeps_who_what_where_and_the_object(rf):
    user = UserFactory()
    request = rf.post("/", REMOTE_ADDR="10.1.2.3")
    profile = RiskProfileFactory(name="x")

    event = audit.record(
        "manual execution", user=user, request=request, obj=profile, after={"a": 1}
    )

    assert (event.username, event.ip, event.object_repr) == (
        user.username,
        "10.1.2.3",
        str(profile),
    )


def test_an_event_cannot_be_changed_or_deleted():
    event = audit.record("login", user=UserFactory())

    event.action = "nothing happened"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "login"


def test_the_admin_shows_events_read_only(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)
    event = audit.record("login", user=UserFactory())
    change = reverse("admin:arbsite_auditevent_change", args=[event.pk])

    assert client.get(change).status_code == 200
    assert client.post(change, {"action": "x"}).status_code == 403
    assert (
        client.post(reverse("admin:arbsite_auditevent_delete", args=[event.pk])).status_code == 403
    )
    assert client.get(reverse("admin:arbsite_auditevent_add")).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "login"


@pytest.mark.parametrize(
    ("role", "status"),
    [(VIEWER, 403), (TRADER, 403), (RISK_MANAGER, 200), (ADMINISTRATOR, 200)],
)
def test_the_audit_page_is_for_risk_managers_and_administrators(
    client, user_with_role, role, status
):
    client.force_login(user_with_role(role))

    assert client.get(reverse("audit")).status_code == status


def test_the_audit_page_filters_by_action_user_and_date_and_pages(client, user_with_role):
    reader = user_with_role(RISK_MANAGER)
    other = UserFactory(username="other")
    for _ in range(55):
        audit.record("kill switch thrown", user=other)
    client.force_login(reader)
    today = AuditEvent.objects.first().at.date().isoformat()

    by_action = client.get(reverse("audit"), {"action": "login"}).context["page"]
    by_user = client.get(reverse("audit"), {"user": "other", "start": today, "end": today})
    second = client.get(reverse("audit"), {"user": "other", "page": 2}).context["page"]
    before = client.get(reverse("audit"), {"end": "2000-01-01"}).context["page"]

    assert [e.username for e in by_action] == [reader.username]
    assert by_user.context["page"].paginator.count == 55
    assert len(by_user.context["page"]) == 50
    assert len(second) == 5
    assert before.paginator.count == 0
    assert "page=2" in by_user.content.decode()


def test_changing_ones_password_is_recorded_without_the_password(client):
    user = UserFactory()
    client.force_login(user)
    form = {"old_password": "pw-for-tests-1", "new_password1": "Fresh-pass-2026!"}

    response = client.post(
        reverse("password_change"), {**form, "new_password2": "Fresh-pass-2026!"}
    )

    assert response.status_code == 302
    event = only_event("password changed")
    assert (event.user, event.object_id, event.before, event.after) == (
        user,
        str(user.pk),
        None,
        None,
    )
    assert "Fresh-pass" not in str(AuditEvent.objects.values_list())


def test_a_refused_password_change_records_nothing(client):
    client.force_login(UserFactory())
    form = {"old_password": "wrong", "new_password1": "Fresh-pass-2026!"}

    response = client.post(
        reverse("password_change"), {**form, "new_password2": "Fresh-pass-2026!"}
    )

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="password changed").exists()


def test_an_administrator_setting_a_users_password_is_recorded_as_theirs(client, user_with_role):
    admin_user = staff(client, user_with_role, ADMINISTRATOR)
    target = UserFactory()
    url = reverse("admin:auth_user_password_change", args=[target.pk])
    form = {"password1": "Set-by-admin-2026!", "password2": "Set-by-admin-2026!"}

    response = client.post(url, {**form, "usable_password": "true"})

    assert response.status_code == 302
    event = only_event("password changed")
    assert (event.user, event.object_id) == (admin_user, str(target.pk))
    target.refresh_from_db()
    assert target.check_password("Set-by-admin-2026!")


def test_the_admins_own_password_page_leads_to_the_audited_one(client, user_with_role):
    staff(client, user_with_role, ADMINISTRATOR)

    response = client.get("/admin/password_change/")

    assert (response.status_code, response["Location"]) == (302, reverse("password_change"))
