"""The opportunities pages: filters, sorting, pagination, fragments, detail, manual execute."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from arbsite import celery_app
from arbsite.models import AuditEvent
from arbsite.roles import TRADER
from tests.factories import (
    ExchangeFactory,
    MarketFactory,
    OpportunityFactory,
    desk_user_without_trades,
    paper_desk,
    publish_test_book,
    trade_with_legs,
)
from trading.models import Trade

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def trader(client, user_with_role):
    user = user_with_role(TRADER)
    client.force_login(user)
    client.user = user
    return client


def profits(html: str) -> list[str]:
    """The net profit column, row by row: the page's own cells, not digits found in a timestamp.

    (A bare `"8.88" in html` also matches `datetime="...:08.881234"` one time in a thousand.)
    """
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>", 1)[1], re.S)
    return [re.findall(r'<td class="num">([^<]*)</td>', row)[1] for row in rows]


def test_opportunities_page_lists_history_newest_first(viewer):
    OpportunityFactory(opened_at=timezone.now() - timedelta(hours=1), net_profit=D("1.11"))
    OpportunityFactory(net_profit=D("2.22"))

    html = viewer.get(reverse("opportunities")).content.decode()

    assert "2 opportunities" in html
    assert profits(html) == ["2.22", "1.11"]


def test_opportunities_filter_by_market_and_buy_venue(viewer):
    eth = MarketFactory(symbol="ETH-USD")
    kraken = ExchangeFactory(slug="kraken")
    OpportunityFactory(market=eth, buy_exchange=kraken, net_profit=D("3.33"))
    OpportunityFactory(market=eth, net_profit=D("4.44"))
    OpportunityFactory(net_profit=D("5.55"))

    html = viewer.get(reverse("opportunities"), {"market": "ETH-USD", "buy": "kraken"}).content
    html = html.decode()

    assert "1 opportunity" in html
    assert profits(html) == ["3.33"]


def test_opportunities_filter_by_date_range(viewer):
    OpportunityFactory(opened_at=timezone.now() - timedelta(days=3), net_profit=D("6.66"))
    OpportunityFactory(net_profit=D("7.77"))
    today = timezone.now().date().isoformat()

    html = viewer.get(reverse("opportunities"), {"since": today}).content.decode()

    assert profits(html) == ["7.77"]


def test_opportunities_filter_taken_and_by_refusal_reason(viewer):
    taken = OpportunityFactory(net_profit=D("8.88"))
    trade_with_legs(taken)
    OpportunityFactory(net_profit=D("9.99"), refusals={"max daily loss": 3})
    OpportunityFactory(net_profit=D("1.23"), refusals={"stale book": 1})

    taken_html = viewer.get(reverse("opportunities"), {"taken": "yes"}).content.decode()
    refused_html = viewer.get(reverse("opportunities"), {"reason": "max daily loss"}).content
    refused_html = refused_html.decode()

    assert profits(taken_html) == ["8.88"]
    assert profits(refused_html) == ["9.99"]
    assert "max daily loss (3 times)" in refused_html


def test_opportunities_sort_by_net_profit(viewer):
    for profit in ("3.01", "9.02", "5.03"):
        OpportunityFactory(net_profit=D(profit))

    html = viewer.get(reverse("opportunities"), {"sort": "-net"}).content.decode()

    assert profits(html) == ["9.02", "5.03", "3.01"]
    assert 'aria-sort="descending"' in html


def test_opportunities_paginate(viewer):
    for _ in range(30):
        OpportunityFactory()

    first = viewer.get(reverse("opportunities")).content.decode()
    second = viewer.get(reverse("opportunities"), {"page": 2}).content.decode()

    assert "page 1 of 2" in first and 'rel="next"' in first
    assert "page 2 of 2" in second and second.count("<tr>") == 5 + 1  # 5 rows and the header


def test_htmx_request_gets_only_the_results_fragment(viewer):
    OpportunityFactory()

    response = viewer.get(reverse("opportunities"), {"page": 1}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html


def test_an_invalid_filter_shows_no_rows_and_says_so(viewer):
    OpportunityFactory()

    html = viewer.get(reverse("opportunities"), {"since": "yesterday-ish"}).content.decode()

    assert "Fix the filter above." in html


def test_opportunity_detail_shows_lifecycle_and_what_was_done(viewer):
    opened = timezone.now() - timedelta(seconds=10)
    opportunity = OpportunityFactory(
        opened_at=opened,
        closed_at=opened + timedelta(seconds=2.5),
        state="closed",
        peak_net_profit=D("4.2"),
        refusals={"max notional": 2},
    )
    trade_with_legs(opportunity)

    html = viewer.get(reverse("opportunity_detail", args=[opportunity.pk])).content.decode()

    assert "2.500 s" in html
    assert "4.2000" in html
    assert "Legs and fills of trade" in html
    assert "max notional" in html


def test_an_opportunitys_trade_legs_show_only_to_who_may_see_trades(client):
    opportunity = OpportunityFactory(state="closed")
    trade = trade_with_legs(opportunity)
    client.force_login(desk_user_without_trades())

    html = client.get(reverse("opportunity_detail", args=[opportunity.pk])).content.decode()

    assert "Legs and fills of trade" not in html and f"Trade #{trade.pk}" not in html
    assert "What was done" not in html and "Not taken." not in html  # nor a false "not taken"


def test_viewer_may_not_execute_by_hand(viewer):
    opportunity = OpportunityFactory()

    assert viewer.get(reverse("execute", args=[opportunity.pk])).status_code == 403
    assert viewer.post(reverse("execute", args=[opportunity.pk])).status_code == 403
    assert not Trade.objects.exists()


def test_trader_sees_a_confirm_step_before_executing(trader):
    opportunity = OpportunityFactory()

    response = trader.get(reverse("execute", args=[opportunity.pk]))

    assert response.status_code == 200
    assert "Execute opportunity" in response.content.decode()
    assert not Trade.objects.exists()


def test_trader_post_enqueues_execution_after_commit_and_is_audited(
    trader, monkeypatch, django_capture_on_commit_callbacks
):
    from trading import tasks

    opportunity = OpportunityFactory()
    queued = []
    monkeypatch.setattr(
        tasks.execute_opportunity, "apply_async", lambda args, kwargs: queued.append((args, kwargs))
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = trader.post(reverse("execute", args=[opportunity.pk]))

    assert response.status_code == 302
    assert queued[0][0] == (opportunity.pk,)
    assert queued[0][1]["user_id"] == trader.user.pk
    event = AuditEvent.objects.get(action="opportunity executed by hand")
    assert (event.user, event.object_id) == (trader.user, str(opportunity.pk))


def test_trader_post_with_the_broker_down_says_so_and_records_nothing(trader, dead_broker):
    opportunity = OpportunityFactory()

    response = trader.post(reverse("execute", args=[opportunity.pk]), follow=True)

    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        f"Opportunity {opportunity.pk} was not executed: the execution queue (Celery's broker) "
        "cannot be reached. Nothing was placed; check that Redis and the workers are running."
    ]
    opportunity.refresh_from_db()
    assert opportunity.refusals == {"execution queue unavailable": 1}
    assert not Trade.objects.exists()
    assert not AuditEvent.objects.filter(action="opportunity executed by hand").exists()


@pytest.fixture
def eager_celery():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_trader_post_runs_a_paper_trade_in_eager_mode(
    trader, eager_celery, django_capture_on_commit_callbacks
):
    opportunity = paper_desk()
    publish_test_book("buyv", "BTC-USD", bids=[(D(99), D(1))], asks=[(D(100), D(2))])
    publish_test_book("sellv", "BTC-USD", bids=[(D(102), D(2))], asks=[(D(103), D(1))])

    with django_capture_on_commit_callbacks(execute=True):
        trader.post(reverse("execute", args=[opportunity.pk]))

    trade = Trade.objects.get(opportunity=opportunity)
    assert trade.requested_by == trader.user


def test_executing_a_closed_opportunity_does_nothing(trader, django_capture_on_commit_callbacks):
    opportunity = OpportunityFactory(state="closed", closed_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        response = trader.post(reverse("execute", args=[opportunity.pk]), follow=True)

    assert "has closed" in response.content.decode()
    assert not Trade.objects.exists()
