"""seed_demo creates one user per role and the demo venues, and is idempotent."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from arbsite.roles import ROLE_PERMISSIONS
from markets.models import Exchange, Listing, Market
from risk.models import RiskProfile


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_one_user_per_role_and_a_paper_profile():
    seed()

    users = get_user_model().objects.all()
    assert sorted(u.groups.get().name for u in users) == sorted(ROLE_PERMISSIONS)
    assert Exchange.objects.count() == 5
    assert Listing.objects.count() == 5 * Market.objects.count()
    profile = RiskProfile.objects.get(is_active=True)
    assert (profile.mode, profile.auto_execute) == ("paper", True)


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing_the_second_time():
    seed()
    before = [
        list(model.objects.order_by("pk").values())
        for model in (get_user_model(), Exchange, Market, Listing, RiskProfile)
    ]

    output = seed()

    after = [
        list(model.objects.order_by("pk").values())
        for model in (get_user_model(), Exchange, Market, Listing, RiskProfile)
    ]
    assert after == before
    assert "nothing changed" in output


@pytest.mark.django_db
def test_demo_user_can_log_in_with_the_demo_password(client):
    seed()

    # The viewer needs no second factor (tests/arbsite/test_twofactor.py: the trader's first login).
    response = client.post("/login/", {"username": "viewer", "password": "demo-desk-2026"})

    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_seed_demo_says_which_listings_quote_in_usdt_and_that_the_desk_takes_it_as_usd():
    seed()

    usdt = Listing.objects.filter(quote_currency="USDT")
    assert sorted({listing.exchange.slug for listing in usdt}) == ["binance", "kucoin", "okx"]
    assert all(listing.quote_interchangeable for listing in usdt)
    assert not Listing.objects.filter(quote_currency="", quote_interchangeable=True).exists()
