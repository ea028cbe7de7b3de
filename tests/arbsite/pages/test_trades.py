"""The trade history page: legs, fills, fees and PnL, and its filters."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import ExchangeFactory, MarketFactory, OpportunityFactory, trade_with_legs

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
