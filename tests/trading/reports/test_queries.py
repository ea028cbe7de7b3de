"""Report figures from the database against a hand-computed history, raw rows and rollups."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models.functions import TruncDate
from django.utils import timezone

from tests.factories import (
    ExchangeFactory,
    OpportunityFactory,
    TradeFactory,
    settled_trade,
)
from trading.execution.settlement import realised_pnl
from trading.models import DailyOpportunityRollup, Opportunity, RollupDay
from trading.reports.figures import Filters, Period
from trading.reports.queries import (
    KEY_FIELDS,
    build_report,
    json_counter_sums,
    rolled_days,
    settled_trades,
)
from trading.reports.rollups import roll_up

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=3)


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


def test_settled_trades_are_the_closed_and_failed_trades_the_report_counts(history, day):
    report = build_report(Period(day, day), Filters(), use_rollups=False)

    trades = settled_trades(Period(day, day), Filters())

    assert set(trades) == {history[name] for name in ("a", "b", "c", "failed")}
    assert trades.count() == report.total.closed + report.total.failed


def test_settled_trades_leave_out_unsettled_trades_and_other_days(history, day):
    TradeFactory(state="pending", closed_at=None)
    TradeFactory(created_at=datetime.combine(day, time(12), tzinfo=UTC) - timedelta(days=1))

    assert settled_trades(Period(day, day), Filters()).count() == 4


def test_settled_trades_match_a_venue_on_either_leg(history, day):
    sell_side = Filters(venue=ExchangeFactory(slug="sellv"))

    assert settled_trades(Period(day, day), sell_side).count() == 4


def test_json_counter_sums_add_up_counts_by_name_in_total_and_per_key(history, day):
    opportunities = Opportunity.objects.all()
    keys = opportunities.values(*KEY_FIELDS[1:], day=TruncDate("opened_at", tzinfo=UTC))

    total = json_counter_sums(opportunities, "refusals")
    by_key = json_counter_sums(keys, "refusals")

    assert total == {None: {"max notional": 5, "kill switch": 1}}
    sell = ExchangeFactory(slug="sellv")
    btc = (day, history["btc"].pk, history["buy"].pk, sell.pk, "")
    assert by_key == {btc: {"max notional": 5, "kill switch": 1}}


def test_rolled_days_are_the_completed_days_before_today(day):
    today = timezone.now().date()
    for rolled in (day, today):
        RollupDay.objects.create(day=rolled)

    assert rolled_days(Period(day - timedelta(days=1), today)) == {day}


def test_the_rollup_path_reads_rollup_rows_not_raw_opportunities(history, day):
    roll_up(day, day)
    DailyOpportunityRollup.objects.filter(day=day).update(seen=100)

    assert build_report(Period(day, day), Filters()).opportunities.seen == 200
    assert build_report(Period(day, day), Filters(), use_rollups=False).opportunities.seen == 7
