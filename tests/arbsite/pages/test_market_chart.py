"""The market page's price chart: each venue's mid over the last half hour from the sampled
tops, the cross-venue spread on the same times, the desk's trades marked (and pushed again when a
trade of the market changes), all exact text."""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.db import connections
from django.urls import reverse

from arbsite import live
from arbsite.pages.market import (
    price_chart_context,
    spread_series,
    trade_marks,
    trade_marks_context,
)
from arbsite.roles import VIEWER
from markets import bookcache
from markets.bookcache import TOP_HISTORY_S, TopSample, record_top
from markets.models import Exchange
from tests.arbsite.test_live import communicator, drain
from tests.factories import OpportunityFactory, TradeFactory, UserFactory, settled_trade
from trading.models import Trade

pytestmark = pytest.mark.django_db
d = Decimal


def at(ts: int, bid: str, ask: str) -> TopSample:
    return TopSample(ts=ts, bid=d(bid), ask=d(ask))


def test_the_spread_at_each_time_uses_each_venues_latest_top_until_its_book_expires():
    history = {
        "cheap": [at(0, "99", "100"), at(10, "101", "102")],
        "dear": [at(5, "102", "103")],
    }

    spreads = spread_series(history, [0, 5, 10, 65, 71])

    assert spreads == [
        d("-100.5025"),  # cheap alone: (99 - 100) / 99.5
        d("198.0198"),  # dear's bid 102 over cheap's ask 100, over their mid 101
        d("0.0000"),  # cheap's ask 102 meets dear's bid 102
        d("0.0000"),  # dear's top is 60 s old: still its book
        None,  # both older than the book's 60 s: no book, no spread
    ]


def test_a_time_before_any_sample_has_no_spread():
    assert spread_series({"cheap": [at(10, "99", "100")]}, [5, 10]) == [None, d("-100.5025")]


@pytest.fixture
def now():
    return int(time.time())


@pytest.fixture
def sampled(venues, empty_caches, now):
    """Cheap sampled 20 and 10 s ago, Dear 15 s ago."""
    bookcache._sampled.clear()  # this process's memory of samples in the cache just cleared
    record_top("cheap", "BTC-USD", d("100.00"), d("101.00"), now - 20)
    record_top("dear", "BTC-USD", d("102.00"), d("103.00"), now - 15)
    record_top("cheap", "BTC-USD", d("100.50"), d("101.50"), now - 10)
    return venues


def opportunity(market):
    cheap, dear = Exchange.objects.get(slug="cheap"), Exchange.objects.get(slug="dear")
    return OpportunityFactory(market=market, buy_exchange=cheap, sell_exchange=dear)


def closed_trade(market, seconds_ago: int):
    """Bought 1 BTC at 100 on Cheap, sold at 102.50 on Dear, 0.1 fee each: 2.30 net."""
    return settled_trade(
        opportunity(market),
        at=datetime.now(UTC) - timedelta(seconds=seconds_ago),
        legs=[("leg", "buy", d(100), d(1), d("0.1")), ("leg", "sell", d("102.50"), d(1), d("0.1"))],
    )


def test_each_venues_mid_is_on_the_union_of_the_sampled_times(sampled, now):
    chart = price_chart_context(sampled)["prices"]["chart"]

    assert chart["times"] == [now - 20, now - 15, now - 10]
    assert chart["mids"] == {
        "cheap": ["100.50", None, "101.00"],
        "dear": [None, "102.50", None],
    }
    # Cheap alone, then Dear's bid 102 over Cheap's ask 101, then over Cheap's ask 101.50.
    assert chart["spread_bps"] == ["-99.5025", "98.5222", "49.1400"]
    assert [v["slug"] for v in chart["venues"]] == ["cheap", "dear"]


def test_a_trade_is_marked_at_each_legs_fill_price_with_venues_size_and_pnl(sampled, now):
    trade = closed_trade(sampled, seconds_ago=12)

    marks = trade_marks_context("BTC-USD")["marks"]

    assert json.loads(marks["chart_json"]) == [
        {
            "ts": int(trade.created_at.timestamp()),
            "buy_price": "100.000000000000",
            "sell_price": "102.500000000000",
            "label": f"Trade #{trade.pk} (closed): bought on Cheap at 100, sold on Dear at 102.5, "
            "size 1 BTC, net PnL 2.30 USD",
        }
    ]
    assert [m["trade"] for m in marks["list"]] == [trade]


def test_a_trade_without_fills_is_marked_at_the_opportunitys_prices_with_no_pnl(venues):
    failed = settled_trade(opportunity(venues), at=datetime.now(UTC), state="failed", legs=[])

    (mark,) = trade_marks(venues, since=time.time() - 60)

    assert (mark["buy_price"], mark["sell_price"]) == (d(100), d(102))
    assert mark["label"].endswith("size 1 BTC, net PnL not realised")
    assert mark["trade"] == failed


def test_only_this_markets_trades_of_the_last_half_hour_are_marked(venues):
    closed_trade(venues, seconds_ago=TOP_HISTORY_S + 5)
    settled_trade(OpportunityFactory(market__symbol="ETH-USD"), at=datetime.now(UTC), legs=[])
    elsewhere = settled_trade(OpportunityFactory(), at=datetime.now(UTC), legs=[])  # BTC-USD

    marks = trade_marks(venues, since=time.time() - TOP_HISTORY_S)

    assert [m["trade"] for m in marks] == [elsewhere]


def price_data(html: str) -> dict:
    found = re.search(r'<script id="price-data" type="application/json">(.*?)</script>', html)
    return json.loads(found.group(1))


def test_the_market_page_carries_the_chart_data_and_says_it_in_words(viewer, sampled, now):
    trade = closed_trade(sampled, seconds_ago=12)

    html = viewer.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert price_data(html)["mids"]["cheap"][0] == "100.50"
    assert 'id="price-chart"' in html and 'id="spread-chart"' in html
    assert "Last sampled mid: Cheap 101, Dear 102.5." in html
    assert "1 trade of the last 30 minutes marked on the chart." in html
    assert f"Trade #{trade.pk} (closed)" in html  # in #trade-marks' data-marks
    assert "Last sampled: 49.14 bps." in html
    # The trades behind a <details>: venues, prices, size and PnL in plain digits.
    row = re.search(rf"#{trade.pk}</a>.*?</tr>", html, re.S).group(0)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells == ["Cheap", "100", "Dear", "102.5", "1", "2.30"]


def test_the_pushed_depth_carries_each_venues_mid_for_the_chart(viewer, venues, book):
    book("cheap", "99.00", "100.00")
    book("dear", "102.00", "103.00", valid=False)

    html = viewer.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert 'data-venue="cheap" data-mid="99.50"' in html
    assert 'data-venue="dear" data-mid=""' in html  # resyncing: no mid to plot


def test_a_user_who_may_not_see_trades_gets_no_marks_and_is_told_why(client, sampled, now):
    closed_trade(sampled, seconds_ago=12)
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_desk"))
    client.force_login(user)

    html = client.get(reverse("market_detail", args=["BTC-USD"])).content.decode()

    assert 'data-marks="[]"' in html and "Trade #" not in html
    assert "Your role does not show the desk's trades: none are marked." in html
    assert "marks:BTC-USD" not in html  # nor does its page follow them


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_trade_that_closes_is_pushed_to_its_markets_page_as_a_mark(user_with_role):
    user = await database_sync_to_async(user_with_role)(VIEWER)
    btc, eth = communicator(user, "marks:BTC-USD"), communicator(user, "marks:ETH-USD")
    assert (await btc.connect())[0] and (await eth.connect())[0]
    trade = await database_sync_to_async(filled_trade_on_btc)()

    await database_sync_to_async(trade.advance)(Trade.State.CLOSED, realised_net_profit=d("2.5"))

    # The notification and the marks may come in one message or two (one over Redis).
    pushed = await drain(btc, 1.5)
    assert any('id="trade-marks"' in h and f"Trade #{trade.pk} (closed)" in h for h in pushed)
    # Another market's page hears of the trade as every page does (its notification), no marks.
    heard = await drain(eth, 1.0)
    assert not any('id="trade-marks"' in html for html in heard)
    assert any("notice-stack" in html for html in heard)
    await btc.disconnect()
    await eth.disconnect()
    live._RENDERER.submit(connections.close_all).result()


def filled_trade_on_btc() -> Trade:
    trade = TradeFactory(state=Trade.State.FILLED, realised_net_profit=None)
    assert trade.opportunity.market.symbol == "BTC-USD"
    return trade
