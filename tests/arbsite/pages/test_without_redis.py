"""While Redis is down the pages that read the book cache still answer, and say it is down."""

from decimal import Decimal

import pytest
from django.urls import reverse

from markets.models import Exchange
from portfolio.services import open_account

pytestmark = pytest.mark.django_db

UNAVAILABLE = "The book cache is unavailable"
# Nothing listens on port 1: the caches are a real Redis client whose server is down.
REDIS_DOWN = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {"default": REDIS_DOWN, "books": REDIS_DOWN}


@pytest.fixture
def paper_bitcoin(venues):
    open_account(
        exchange=Exchange.objects.get(slug="cheap"), mode="paper", funding={"BTC": Decimal(1)}
    )


def test_dashboard_answers_and_says_the_book_cache_is_unavailable(viewer, venues, redis_down):
    response = viewer.get(reverse("dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert UNAVAILABLE in html
    assert "Cheap" in html and "Dear" in html  # the venues are listed, without prices
    assert "the cache holding its heartbeat is unavailable" in html


def test_market_page_answers_and_says_the_book_cache_is_unavailable(viewer, venues, redis_down):
    response = viewer.get(reverse("market_detail", args=["BTC-USD"]))

    assert response.status_code == 200
    assert UNAVAILABLE in response.content.decode()


def test_portfolio_answers_and_says_the_book_cache_is_unavailable(
    viewer, paper_bitcoin, redis_down
):
    response = viewer.get(reverse("portfolio"))

    assert response.status_code == 200
    assert UNAVAILABLE in response.content.decode()


@pytest.mark.parametrize("page", ["dashboard", "portfolio"])
def test_pages_say_nothing_of_the_book_cache_while_it_answers(viewer, paper_bitcoin, book, page):
    book("cheap", "99.00", "100.00")

    response = viewer.get(reverse(page))

    assert response.status_code == 200
    assert UNAVAILABLE not in response.content.decode()


def test_the_risk_profile_admin_answers_with_the_engine_not_reporting(
    client, user_with_role, redis_down
):
    from arbsite.roles import RISK_MANAGER
    from tests.factories import RiskProfileFactory

    user = user_with_role(RISK_MANAGER)
    user.is_staff = True
    user.save()
    client.force_login(user)
    profile = RiskProfileFactory()

    response = client.get(reverse("admin:risk_riskprofile_change", args=[profile.pk]))

    assert response.status_code == 200
    assert 'id="risk-status"' in response.content.decode()


def test_the_market_chart_says_it_has_no_price_history_while_the_cache_is_down(
    viewer, venues, redis_down
):
    html = viewer.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert "no price history until it answers again" in html
    assert '"times": []' in html  # an empty chart, not an error page
