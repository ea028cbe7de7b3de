"""The audit trail: each audited action leaves exactly one event, and events never change."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from arbsite import audit
from arbsite.models import AppendOnlyError, AuditEvent
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from portfolio.models import Mode
from tests.factories import ExchangeFactory, MarketFactory, RiskProfileFactory, UserFactory

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


def test_a_role_change_in_the_admin_records_the_groups_and_hides_the_password(
    client, user_with_role
):
    staff(client, user_with_role, ADMINISTRATOR)
    target = user_with_role(VIEWER)
    url = reverse("admin:auth_user_change", args=[target.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in {"last_login", "date_joined", "password"}
    }
    data.update(
        groups=[Group.objects.get(name=TRADER).pk],
        user_permissions=[],
        date_joined_0=target.date_joined.strftime("%Y-%m-%d"),
        date_joined_1=target.date_joined.strftime("%H:%M:%S.%f"),
    )
    for flag in ("is_active", "is_staff", "is_superuser"):
        if data.pop(flag, False):
            data[flag] = "on"

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event("user changed")
    assert (event.before, event.after) == ({"groups": [VIEWER]}, {"groups": [TRADER]})


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
