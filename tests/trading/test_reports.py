"""Report figures against a hand-computed history, the rollup path, and the reports page."""

import json
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from tests.factories import ExchangeFactory, OpportunityFactory, report_history, settled_trade
from trading.reports import Filters, Period, build_report
from trading.rollups import roll_up
from trading.services import realised_pnl

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=3)


@pytest.fixture
def history(day):
    return report_history(day)


def test_fixture_pnl_is_what_the_service_computes_from_the_fills(history):
    for name in ("a", "b", "c"):
        assert history[name].realised_net_profit == realised_pnl(history[name])


def test_trade_figures_match_the_hand_computed_history(history, day):
    total = build_report(Period(day, day), Filters(), use_rollups=False).total

    assert (total.closed, total.failed, total.wins) == (3, 1, 2)
    assert total.volume == D("623.4")  # 202 + (200 + 101 + 100.5) + 19.9
    assert total.fees == D("0.7254")  # 0.304 + 0.4015 + 0.0199
    assert total.net_profit == D("2.6746")  # 1.696 + 1.0985 - 0.1199
    assert total.gross_profit == D("3.4")
    assert total.average == D("0.891533333333")
    assert total.worst == D("-0.1199")
    assert total.best == D("1.696")
    assert total.win_rate == D("66.67")
    assert (total.one_legged, total.one_legged_cost) == (1, D("2.4015"))  # 3.5 - 1.0985


def test_figures_are_exact_decimals(history, day):
    total = build_report(Period(day, day), Filters(), use_rollups=False).total

    for value in (total.volume, total.fees, total.net_profit, total.worst, total.average):
        assert isinstance(value, Decimal)
        assert value.as_tuple().exponent == -12


def test_figures_by_market_and_venue_pair(history, day):
    report = build_report(Period(day, day), Filters(), use_rollups=False)

    assert report.by_market["BTC-USD"].net_profit == D("2.7945")
    assert report.by_market["BTC-USD"].failed == 1
    assert report.by_market["ETH-USD"].net_profit == D("-0.1199")
    assert list(report.by_pair) == [("Buyv", "Sellv")]
    assert report.by_pair[("Buyv", "Sellv")].closed == 3


@pytest.mark.parametrize(
    ("filters", "closed", "net"),
    [
        ({"mode": "live"}, 1, "-0.1199"),
        ({"mode": "paper"}, 2, "2.7945"),
        ({"market": "ETH-USD"}, 1, "-0.1199"),
        ({"venue": "buyv"}, 3, "2.6746"),
        ({"venue": "elsewhere"}, 0, "0"),
    ],
)
def test_filters_select_the_trades(history, day, filters, closed, net):
    from markets.models import Market

    kwargs = {"mode": filters.get("mode", "")}
    if "market" in filters:
        kwargs["market"] = Market.objects.get(symbol=filters["market"])
    if "venue" in filters:
        kwargs["venue"] = ExchangeFactory(slug=filters["venue"])
    total = build_report(Period(day, day), Filters(**kwargs), use_rollups=False).total

    assert (total.closed, total.net_profit) == (closed, D(net))


def test_opportunity_statistics_and_capture_ratio(history, day):
    report = build_report(Period(day, day), Filters(), use_rollups=False)
    o = report.opportunities

    assert (o.seen, o.taken, o.closed) == (7, 4, 6)
    assert dict(o.refusals) == {"max notional": 5, "kill switch": 1}
    assert o.refused == 6
    assert o.peak_net_profit == D("10")
    assert o.peak_max == D("4")
    assert o.duration_total == timedelta(seconds=953.5)
    assert {k: v for k, v in o.durations.items() if v} == {
        "< 1 s": 1,
        "1-5 s": 1,
        "5-30 s": 1,
        "30 s-2 min": 1,
        "2-10 min": 1,
        ">= 10 min": 1,
    }
    assert dict(o.hours) == {"1": 1, "2": 2, "3": 2, "5": 1, "23": 1}
    assert report.capture_ratio == D("26.75")  # 2.6746 / 10


def test_a_trade_at_235959_utc_lands_on_its_day(day):
    opportunity = OpportunityFactory()
    late = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=UTC)
    legs = [("leg", "buy", D(100), D(1), D(0)), ("leg", "sell", D(101), D(1), D(0))]
    settled_trade(opportunity, at=late, legs=legs)
    settled_trade(OpportunityFactory(), at=late + timedelta(microseconds=1), legs=legs)

    report = build_report(Period(day, day + timedelta(days=1)), Filters(), use_rollups=False)

    assert report.by_day[day].closed == 1
    assert report.by_day[day + timedelta(days=1)].closed == 1


def test_an_empty_period_has_zero_figures(day):
    report = build_report(Period(day, day), Filters())

    assert report.total.closed == 0
    assert report.total.net_profit == D(0)
    assert report.total.average is None
    assert report.total.win_rate is None
    assert report.capture_ratio is None
    assert report.opportunities.seen == 0
    assert report.chart_data()["daily_net"] == [0.0]


def test_rollups_plus_live_rows_give_the_same_figures_as_rows_alone(history, day):
    today = timezone.now().date()
    legs = [("leg", "buy", D(50), D(2), D("0.05")), ("leg", "sell", D(51), D(2), D("0.06"))]
    settled_trade(OpportunityFactory(opened_at=timezone.now()), at=timezone.now(), legs=legs)
    period = Period(day - timedelta(days=1), today)
    roll_up(period.first, today)

    rolled = build_report(period, Filters())
    raw = build_report(period, Filters(), use_rollups=False)

    assert rolled.rolled_days == 4
    assert rolled.total == raw.total
    assert rolled.by_day == raw.by_day
    assert rolled.by_market == raw.by_market
    assert rolled.by_pair == raw.by_pair
    assert rolled.opportunities == raw.opportunities
    assert rolled.total.closed == 4


def test_rollups_answer_with_the_filters_too(history, day):
    roll_up(day, day)
    eth = Filters(market=history["eth"], mode="live")

    rolled = build_report(Period(day, day), eth)
    raw = build_report(Period(day, day), eth, use_rollups=False)

    assert (rolled.rolled_days, rolled.total) == (1, raw.total)
    assert rolled.opportunities == raw.opportunities
    assert rolled.total.net_profit == D("-0.1199")


# The page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR])
def test_every_desk_role_reads_the_reports_page(client, user_with_role, role, history, day):
    client.force_login(user_with_role(role))
    since = day.isoformat()

    response = client.get(f"/reports/?period=custom&since={since}&until={since}")

    assert response.status_code == 200
    html = response.content.decode()
    assert "2.6746" in html
    assert 'id="report-data"' in html


def test_the_page_carries_chart_data_in_a_json_block_and_no_inline_script(
    client, user_with_role, history, day
):
    client.force_login(user_with_role(VIEWER))
    since = day.isoformat()

    html = client.get(f"/reports/?period=custom&since={since}&until={since}").content.decode()

    data = json.loads(
        re.search(r'id="report-data" type="application/json">(.*?)</script>', html)[1]
    )
    assert data["cumulative_net"] == [2.6746]
    assert data["opportunities_by_hour"][2] == 2
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag
    assert "js/reports.js" in html


def test_htmx_gets_only_the_results_fragment(client, user_with_role):
    client.force_login(user_with_role(VIEWER))

    response = client.get("/reports/?period=30d", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html


def test_an_invalid_custom_period_asks_for_a_fix(client, user_with_role):
    client.force_login(user_with_role(VIEWER))

    response = client.get("/reports/?period=custom&since=2026-02-10&until=2026-02-01")

    assert response.status_code == 200
    assert "Fix the filter above" in response.content.decode()


def test_anonymous_users_go_to_the_login_page(client):
    assert client.get("/reports/").status_code == 302
