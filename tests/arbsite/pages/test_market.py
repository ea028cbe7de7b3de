"""The market page: each venue's depth side by side and the spread the chart plots."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_market_detail_shows_each_venues_depth_side_by_side(viewer, venues, book):
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00")

    html = viewer.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert 'id="depth"' in html and 'id="spread-chart"' in html
    assert html.count('<table class="depth">') == 2
    assert "98.00" in html and "104.00" in html  # second levels
    # Highest bid 102 against lowest ask 100, over their mid 101.
    assert 'data-spread-bps="198.0198"' in html


def test_market_detail_of_an_unknown_market_is_404(viewer):
    assert viewer.get(reverse("market_detail", args=["NOPE-USD"])).status_code == 404


def test_pages_load_no_inline_script(viewer, venues, book):
    response = viewer.get(reverse("market_detail", args=["BTC-USD"]))

    assert "<script>" not in response.content.decode()
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
