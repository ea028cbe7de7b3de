"""The trade history page: legs, fills, fees and PnL, and its filters."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from tests.factories import (
    ExchangeFactory,
    MarketFactory,
    OpportunityFactory,
    desk_user_without_trades,
    partially_filled_trade,
    trade_with_legs,
)

pytestmark = pytest.mark.django_db


def test_trades_page_shows_legs_fills_fees_and_pnl(viewer):
    trade = trade_with_legs(OpportunityFactory())

    html = viewer.get(reverse("trades")).content.decode()

    assert f"Trade #{trade.pk}" in html
    assert "1 @ 100" in html and "1 @ 102" in html
    assert "0.2000" in html  # both legs' fees
    assert "1.5000" in html


@pytest.mark.parametrize("params", [{"state": "failed"}, {"mode": "live"}, {"venue": "odd"}])
def test_trades_filter_by_state_mode_and_venue(viewer, params):
    plain = trade_with_legs(OpportunityFactory())
    odd = trade_with_legs(
        OpportunityFactory(buy_exchange=ExchangeFactory(slug="odd")),
        state="failed",
        mode="live",
    )

    html = viewer.get(reverse("trades"), params).content.decode()

    assert f"Trade #{odd.pk}" in html
    assert f"Trade #{plain.pk}" not in html


def test_trades_filter_by_market_and_date(viewer):
    trade = trade_with_legs(OpportunityFactory(market=MarketFactory(symbol="ETH-USD")))
    trade_with_legs(OpportunityFactory())
    today = timezone.now().date().isoformat()

    html = viewer.get(reverse("trades"), {"market": "ETH-USD", "since": today}).content.decode()

    assert "1 trade" in html and f"Trade #{trade.pk}" in html


# Closing a partially filled trade, its residual kept (trading.execution.trades.keep_residual).


@pytest.fixture
def trader(client, user_with_role):
    client.force_login(user_with_role(TRADER))
    return client


def test_a_trader_sees_the_way_to_keep_a_residual_and_a_viewer_does_not(trader, user_with_role):
    trade = partially_filled_trade()
    url = reverse("trade_residual", args=[trade.pk])
    viewer = Client()
    viewer.force_login(user_with_role(VIEWER))

    assert url in trader.get(reverse("trades")).content.decode()
    assert url not in viewer.get(reverse("trades")).content.decode()
    assert viewer.get(url).status_code == 403
    assert viewer.post(url, {"note": "kept"}).status_code == 403
    trade.refresh_from_db()
    assert trade.state == "partially_filled"


def test_a_trader_confirms_and_the_trade_closes_audited(trader):
    trade = partially_filled_trade()
    url = reverse("trade_residual", args=[trade.pk])
    page = trader.get(url).content.decode()
    assert "0.005 BTC more bought than sold" in page

    response = trader.post(url, {"note": "sold by hand on Buyv"}, follow=True)

    trade.refresh_from_db()
    assert trade.state == "closed"
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [f"Trade {trade.pk} closed with 0.005 BTC kept as inventory."]
    assert "Closed with 0.005 BTC kept as inventory." in response.content.decode()
    event = AuditEvent.objects.get(action="trade residual kept")
    assert event.after == {"residual": "0.005 BTC", "note": "sold by hand on Buyv"}


@pytest.mark.parametrize("note", ["", "   ", "x" * 151])
def test_a_bad_note_is_a_form_error_and_closes_nothing(trader, note):
    trade = partially_filled_trade()

    response = trader.post(reverse("trade_residual", args=[trade.pk]), {"note": note})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    trade.refresh_from_db()
    assert trade.state == "partially_filled"


def test_a_trade_already_closed_says_so(trader):
    trade = trade_with_legs(OpportunityFactory())

    response = trader.post(reverse("trade_residual", args=[trade.pk]), {"note": "kept"})

    assert "is closed, not partially filled" in response.content.decode()


@pytest.mark.parametrize("role", [VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR])
def test_every_desk_role_reads_the_trades_page(client, user_with_role, role):
    trade = trade_with_legs(OpportunityFactory())
    client.force_login(user_with_role(role))

    html = client.get(reverse("trades")).content.decode()

    assert f"Trade #{trade.pk}" in html


def test_a_desk_user_who_may_not_see_trades_is_refused_the_trades_page(client):
    trade = trade_with_legs(OpportunityFactory())
    client.force_login(desk_user_without_trades())

    response = client.get(reverse("trades"))

    assert response.status_code == 403
    assert f"Trade #{trade.pk}" not in response.content.decode()
    assert f'href="{reverse("trades")}"' not in client.get(reverse("dashboard")).content.decode()
