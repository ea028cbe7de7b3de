"""Risk profiles in the admin: validation, who may change them, and the status panel."""

from decimal import Decimal

import pytest
from django.urls import reverse

from arbsite.roles import RISK_MANAGER, TRADER, VIEWER
from portfolio.models import Mode
from risk import checks, services
from risk.models import RiskProfile
from tests.factories import RiskProfileFactory
from trading.execution.desk import execution_refusals, record_refusals
from trading.selectors import status_panel


def form_data(profile: RiskProfile, **changes) -> dict:
    """The admin form's POST as the browser would send it for `profile`, with `changes`."""
    data = {
        field.name: field.value_from_object(profile)
        for field in RiskProfile._meta.concrete_fields
        if field.editable and not field.primary_key
    }
    data["allowed_exchanges"] = [e.pk for e in profile.allowed_exchanges.all()]
    data["allowed_markets"] = [m.pk for m in profile.allowed_markets.all()]
    data.update(changes)
    for name in ("is_active", "auto_execute"):
        if data[name]:
            data[name] = "on"
        else:
            data.pop(name)
    return data


def staff(client, user_with_role, role):
    user = user_with_role(role)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return user


def change_url(profile) -> str:
    return reverse("admin:risk_riskprofile_change", args=[profile.pk])


def test_a_change_in_the_admin_applies_to_the_next_opportunity(client, user_with_role, desk):
    profile, opportunity = desk
    # The books stay fresh however long the admin takes to answer on a loaded machine.
    RiskProfile.objects.filter(pk=profile.pk).update(max_book_age_ms=600_000)
    profile.refresh_from_db()
    staff(client, user_with_role, RISK_MANAGER)
    assert execution_refusals(opportunity, mode=Mode.PAPER) == []

    response = client.post(change_url(profile), form_data(profile, min_profit_bps="200"))

    assert response.status_code == 302
    assert execution_refusals(opportunity, mode=Mode.PAPER) == [checks.PROFIT_BPS]


def test_removing_a_venue_in_the_admin_refuses_its_opportunities(client, user_with_role, desk):
    profile, opportunity = desk
    staff(client, user_with_role, RISK_MANAGER)

    client.post(
        change_url(profile), form_data(profile, allowed_exchanges=[opportunity.buy_exchange.pk])
    )

    assert execution_refusals(opportunity, mode=Mode.PAPER) == [checks.VENUE_NOT_ALLOWED]


@pytest.mark.parametrize(
    ("role", "is_staff", "status"), [(VIEWER, False, 302), (TRADER, True, 403)]
)
def test_viewers_and_traders_cannot_change_a_profile(
    client, user_with_role, desk, role, is_staff, status
):
    profile, _ = desk
    user = user_with_role(role)
    user.is_staff = is_staff
    user.save()
    client.force_login(user)

    response = client.post(change_url(profile), form_data(profile, max_notional="999999"))

    assert response.status_code == status
    assert RiskProfile.objects.get().max_notional == Decimal(1000)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"max_daily_loss": "-1"},
            "max_daily_loss",
            "The maximum daily realised loss (quote) cannot be below zero.",
        ),
        ({"allowed_exchanges": []}, "allowed_exchanges", "An active profile must allow a venue."),
        ({"allowed_markets": []}, "allowed_markets", "An active profile must allow a market."),
        (
            {"max_consecutive_failures": "0"},
            "max_consecutive_failures",
            "Allow at least one failed or hedged trade.",
        ),
        (
            {"drift_tolerances": '{"usd": "0.01"}'},
            "drift_tolerances",
            "'usd' is not an asset code (capitals and digits, e.g. USD).",
        ),
        (
            {"drift_tolerances": '{"USD": 0.01}'},
            "drift_tolerances",
            "USD: 0.01 is not a decimal of zero or more (write it as text).",
        ),
        (
            {"drift_tolerances": '{"USD": "-1"}'},
            "drift_tolerances",
            "USD: '-1' is not a decimal of zero or more (write it as text).",
        ),
        (
            {"drift_tolerances": '["USD"]'},
            "drift_tolerances",
            'Give an object of asset: tolerance, e.g. {"USD": "0.01"}.',
        ),
    ],
)
def test_invalid_profiles_are_refused_with_a_clear_message(
    client, user_with_role, desk, changes, field, message
):
    profile, _ = desk
    staff(client, user_with_role, RISK_MANAGER)

    response = client.post(change_url(profile), form_data(profile, **changes))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]


def test_a_second_active_profile_for_a_mode_is_refused(client, user_with_role, desk):
    profile, _ = desk
    other = RiskProfileFactory(name="other", is_active=False)
    other.allowed_exchanges.set(profile.allowed_exchanges.all())
    other.allowed_markets.set(profile.allowed_markets.all())
    staff(client, user_with_role, RISK_MANAGER)

    response = client.post(change_url(other), form_data(other, is_active=True))

    errors = response.context["adminform"].form.errors
    assert errors["is_active"] == [
        "Another paper profile is already active (paper desk); deactivate it first."
    ]


def test_the_change_page_shows_the_desk_status_and_recent_decisions(client, user_with_role, desk):
    profile, opportunity = desk
    record_refusals(opportunity.pk, [checks.PROFIT_BPS, checks.PROFIT_BPS])
    services.throw_kill_switch(reason="drill", user=staff(client, user_with_role, RISK_MANAGER))

    html = client.get(change_url(profile)).content.decode()

    assert '<section id="risk-status"' in html
    assert "<strong>ON</strong>: drill" in html
    assert "paper desk (Paper): automatic execution on" in html
    assert "net profit below minimum (bps): 2" in html
    assert "not taken" in html


def test_the_status_section_renders_alone_for_live_pushes(desk):
    from django.template.loader import render_to_string

    html = render_to_string(
        "admin/risk/riskprofile/change_form.html#risk-status", {"status": status_panel()}
    )

    assert html.strip().startswith('<section id="risk-status"')
    assert "Kill switch" in html


def test_a_live_profile_is_not_switched_on_while_a_venue_is_unreconciled(
    client, user_with_role, desk
):
    paper, _ = desk
    live = RiskProfileFactory(name="live desk", mode=Mode.LIVE, is_active=False, auto_execute=True)
    live.allowed_exchanges.set(paper.allowed_exchanges.all())
    live.allowed_markets.set(paper.allowed_markets.all())
    staff(client, user_with_role, RISK_MANAGER)

    response = client.post(change_url(live), form_data(live, is_active=True))

    [error] = response.context["adminform"].form.errors["is_active"]
    assert error.startswith("Automatic live execution cannot start: ")
    assert "no live account" in error
    assert not RiskProfile.objects.get(pk=live.pk).is_active


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "reads"), [(TRADER, False), (RISK_MANAGER, True)])
def test_risk_managers_read_the_venue_pauses_and_no_one_edits_them(
    client, user_with_role, role, reads
):
    from risk.models import VenuePause
    from tests.factories import ExchangeFactory

    pause = VenuePause.pause(
        exchange_id=ExchangeFactory(slug="binance").pk,
        mode=Mode.LIVE,
        p99_ms=2500.0,
        limit_ms=2000,
        orders=3,
    )
    staff(client, user_with_role, role)

    listing = client.get(reverse("admin:risk_venuepause_changelist"))
    change = client.post(
        reverse("admin:risk_venuepause_change", args=[pause.pk]), {"limit_ms": 9999}
    )

    assert (str(pause.exchange) in listing.content.decode()) is reads
    assert change.status_code == 403
    pause.refresh_from_db()
    assert pause.limit_ms == 2000
