"""Risk writes: the kill switch and automatic execution, each recorded once, with the pages told."""

import pytest
from django.db import connection

from arbsite.models import AuditEvent
from markets import notices
from portfolio.models import Mode
from risk import services
from risk.models import KillSwitch, RiskProfile
from risk.signals import desk_changed
from tests.factories import ExchangeFactory, RiskProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes():
    """Every desk_changed sent, with whether it came inside a transaction."""
    sent = []

    def receiver(sender, **kwargs):
        sent.append({**kwargs, "in_transaction": connection.in_atomic_block})

    desk_changed.connect(receiver)
    yield sent
    desk_changed.disconnect(receiver)


def test_a_person_throwing_the_switch_is_recorded_with_their_address(rf, fresh_cache):
    user = UserFactory()
    request = rf.post("/", REMOTE_ADDR="10.1.2.3")

    assert services.throw_kill_switch(reason="venue incident", user=user, request=request)

    switch = KillSwitch.current()
    assert (switch.is_on, switch.reason, switch.changed_by, switch.automatic) == (
        True,
        "venue incident",
        user,
        False,
    )
    event = AuditEvent.objects.get(action="kill switch thrown")
    assert (event.user, event.ip, event.object_type) == (user, "10.1.2.3", "risk.killswitch")
    assert (event.before, event.after) == (
        {"is_on": False},
        {"is_on": True, "reason": "venue incident"},
    )


def test_throwing_a_switch_that_is_already_on_changes_and_records_nothing(fresh_cache):
    user = UserFactory()
    assert services.throw_kill_switch(reason="first", user=user)

    assert not services.throw_kill_switch(reason="second", user=user)
    assert KillSwitch.current().reason == "first"
    assert AuditEvent.objects.filter(action="kill switch thrown").count() == 1


def test_the_desk_tripping_its_switch_is_recorded_as_the_desk_once(fresh_cache):
    assert services.trip_kill_switch(reason="daily loss limit reached")
    assert not services.trip_kill_switch(reason="daily loss limit reached")

    event = AuditEvent.objects.get(action="kill switch tripped")
    assert (event.user, event.username, event.ip) == (None, "desk", None)
    assert KillSwitch.current().automatic


def test_a_reset_lets_the_desk_trade_and_records_the_reason_it_ends(fresh_cache):
    user = UserFactory()
    services.throw_kill_switch(reason="drill", user=user)

    assert services.reset_kill_switch(user=user)
    assert not services.reset_kill_switch(user=user)

    assert not KillSwitch.current().is_on
    event = AuditEvent.objects.get(action="kill switch reset")
    assert (event.before, event.after) == ({"is_on": True, "reason": "drill"}, {"is_on": False})


def test_automatic_execution_switches_the_active_profile_once_per_change():
    profile = RiskProfileFactory(name="paper desk", auto_execute=True)
    user = UserFactory()

    assert services.set_auto_execution(on=False, user=user)
    assert not services.set_auto_execution(on=False, user=user)
    assert not services.set_auto_execution(on=True, user=user, mode=Mode.LIVE)  # none active

    assert not RiskProfile.objects.get(pk=profile.pk).auto_execute
    event = AuditEvent.objects.get(action="automatic execution off")
    assert (event.object_id, event.after) == (str(profile.pk), {"auto_execute": False})


def test_each_change_is_announced_inside_its_transaction_with_what_changed(changes, fresh_cache):
    user = UserFactory()

    services.throw_kill_switch(reason="drill", user=user)
    services.trip_kill_switch(reason="ignored: already on")
    services.reset_kill_switch(user=user)

    assert [(c["action"], c["user"], c["in_transaction"]) for c in changes] == [
        ("kill switch thrown", user, True),
        ("kill switch reset", user, True),
    ]
    assert changes[0]["obj"] == KillSwitch.current()


def test_a_change_whose_audit_fails_is_rolled_back(fresh_cache):
    def failing(sender, **kwargs):
        raise RuntimeError("audit trail unavailable")

    desk_changed.connect(failing)
    try:
        with pytest.raises(RuntimeError):
            services.throw_kill_switch(reason="drill", user=UserFactory())
    finally:
        desk_changed.disconnect(failing)

    assert not KillSwitch.current().is_on
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_pages_hear_of_a_change_once_it_commits(fresh_cache, heard):
    from django.db import transaction

    health, status = heard(notices.HEALTH), heard(notices.RISK_STATUS)

    with transaction.atomic():
        services.throw_kill_switch(reason="drill", user=UserFactory())
        assert health.notices(wait_s=0.05) == []

    assert len(health.notices()) == 1
    assert len(status.notices()) == 1


def test_live_automatic_execution_is_not_switched_on_while_a_venue_is_unreconciled():
    kraken = ExchangeFactory(slug="kraken")
    profile = RiskProfileFactory(name="live desk", mode=Mode.LIVE, auto_execute=False)
    profile.allowed_exchanges.set([kraken])
    user = UserFactory()

    with pytest.raises(services.LiveNotReady) as refused:
        services.set_auto_execution(on=True, user=user, mode=Mode.LIVE)

    assert str(refused.value) == ("Automatic live execution cannot start: kraken: no live account.")
    assert not RiskProfile.objects.get(pk=profile.pk).auto_execute
    assert services.set_auto_execution(on=False, user=user, mode=Mode.LIVE) is False  # already off
