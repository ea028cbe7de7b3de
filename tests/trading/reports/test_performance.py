"""Performance figures: drawdown, profit factor, expectancy, fee share and return per venue,
against hand-computed values on a scripted series and a brute force on random ones."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from markets.money import day_start
from portfolio.models import LedgerEntry
from portfolio.services import open_account
from tests.factories import (
    ExchangeFactory,
    FillFactory,
    MarketFactory,
    OpportunityFactory,
    OrderFactory,
    TradeFactory,
)
from trading.models import DailyDrawdown, Order, RollupDay, Trade
from trading.reports.figures import Filters, Period
from trading.reports.performance import (
    Drawdown,
    Holding,
    Performance,
    VenueReturn,
    day_runs,
    holding_values,
    join_days,
    max_drawdown,
)
from trading.reports.queries import build_report, holding_of, performance_of
from trading.reports.rollups import roll_up

D = Decimal
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
# Net PnL of five trades: cumulative 5, 2, 6, -1, 1.
SCRIPT = [D(5), D(-3), D(4), D(-7), D(2)]


def timed(pnls: list[Decimal]) -> list[tuple[datetime, Decimal]]:
    return [(START + timedelta(minutes=n), pnl) for n, pnl in enumerate(pnls)]


def brute_drawdown(pnls: list[Decimal]) -> Decimal:
    """Every (high, later low) pair of the cumulative sum, the start (zero) included."""
    cumulative = [D(0)]
    for pnl in pnls:
        cumulative.append(cumulative[-1] + pnl)
    falls = [
        cumulative[i] - cumulative[j]
        for i in range(len(cumulative))
        for j in range(i + 1, len(cumulative))
    ]
    return max([fall for fall in falls if fall > 0], default=D(0))


def test_the_scripted_series_has_the_hand_computed_drawdown_and_dates():
    drawdown = max_drawdown(timed(SCRIPT))

    assert drawdown == Drawdown(D(7), START + timedelta(minutes=2), START + timedelta(minutes=3))


def test_the_scripted_series_has_the_hand_computed_factor_and_expectancy():
    figures = Performance(closed=5, gross_won=D(11), gross_lost=D(-10), fees=D(4), drawdown=None)

    assert figures.net_profit == D(1)
    assert figures.profit_factor == D("1.10")
    assert figures.expectancy == D("0.2")
    assert figures.fee_share == D("80.00")  # 4 of a gross of 5


def test_a_fall_from_the_start_has_no_peak_date_and_a_rise_has_no_drawdown():
    assert max_drawdown(timed([D(-2), D(1)])) == Drawdown(D(2), None, START)
    assert max_drawdown(timed([D(1), D(0), D(3)])) is None
    assert max_drawdown([]) is None


def test_figures_without_a_loss_a_trade_or_a_gross_say_so():
    assert Performance(1, D(3), D(0), D(0), None).profit_factor is None
    assert Performance(0, D(0), D(0), D(0), None).expectancy is None
    assert Performance(2, D(1), D(-2), D(1), None).fee_share is None  # gross of 0
    assert VenueReturn("Kraken", D(0), D(5)).return_bps is None
    assert VenueReturn("Kraken", D(20_000), D(5)).return_bps == D("2.50")


money_pnls = st.lists(
    st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False), max_size=40
)


@given(money_pnls)
def test_drawdown_matches_the_brute_force_on_random_series(pnls):
    drawdown = max_drawdown(timed(pnls))

    assert (drawdown.amount if drawdown else D(0)) == brute_drawdown(pnls)


@given(money_pnls)
def test_profit_factor_and_expectancy_match_their_definitions(pnls):
    won = sum((p for p in pnls if p > 0), D(0))
    lost = sum((p for p in pnls if p < 0), D(0))
    figures = Performance(len(pnls), won, lost, D(0), None)

    if lost:
        assert abs(figures.profit_factor - won / -lost) <= D("0.005")
    if pnls:
        assert abs(figures.expectancy - sum(pnls, D(0)) / len(pnls)) < D("1e-12")


# Trades over days: (minutes after the one before, 0 a tie; whether a new day begins; PnL), the
# PnL small so that highs, lows and times repeat.
day_series = st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(-3, 3).map(D)))


def settled(series, first: date) -> list[tuple[datetime, int, Decimal]]:
    """(settled at, id, PnL) of `series`, from 09:00 UTC on day `first`, ids in order."""
    trades, days, minutes = [], 0, 0
    for n, (step, new_day, pnl) in enumerate(series):
        days, minutes = (days + 1, 0) if new_day else (days, minutes + step)
        at = day_start(first) + timedelta(days=days, hours=9, minutes=minutes)
        trades.append((at, n + 1, pnl))
    return trades


@settings(max_examples=500)
@given(day_series)
def test_joining_the_days_runs_gives_the_drawdown_of_their_trades(series):
    trades = settled(series, START.date())

    joined = join_days(run for _, run in day_runs(trades))

    assert joined == max_drawdown((at, pnl) for at, _, pnl in trades)


def test_a_day_that_climbs_back_to_the_high_dates_the_next_days_fall_from_its_return():
    day = START.date()
    # Day 1: 2, then 0; day 2: back to 2 at 09:01, then -1: the fall of 3 is from day 2's 2.
    trades = settled(
        [(0, False, D(2)), (0, False, D(-2)), (0, True, D(1)), (1, False, D(1)), (1, False, D(-3))],
        day,
    )

    joined = join_days(run for _, run in day_runs(trades))

    assert joined == Drawdown(D(3), trades[3][0], trades[4][0])


# From the database ---------------------------------------------------------------------------


@pytest.fixture
def period():
    return Period(START.date(), START.date())


def closed_trades(pnls: list[Decimal], **opportunity):
    trades = []
    for n, pnl in enumerate(pnls):
        at = START + timedelta(minutes=n)
        trade = TradeFactory(
            opportunity=OpportunityFactory(**opportunity),
            realised_net_profit=pnl,
            created_at=at,
            closed_at=at,
        )
        OrderFactory(trade=trade, fee=D("0.5"), amount=D(1), limit_price=D(100))
        trades.append(trade)
    return trades


@pytest.mark.django_db
def test_the_database_gives_the_hand_computed_figures_of_the_script(period):
    closed_trades(SCRIPT)

    figures = performance_of(build_report(period, Filters()))

    assert figures.drawdown == max_drawdown(timed(SCRIPT))
    assert (figures.closed, figures.gross_won, figures.gross_lost) == (5, D(11), D(-10))
    assert figures.profit_factor == D("1.10") and figures.expectancy == D("0.2")
    assert figures.fees == D("2.5") and figures.fee_share == D("71.43")  # 2.5 of 3.5


@pytest.mark.django_db
def test_each_venue_returns_the_pnl_of_its_trades_on_the_notional_filled_there(period):
    kraken = ExchangeFactory(slug="kraken", name="Kraken")
    coinbase = ExchangeFactory(slug="coinbase", name="Coinbase")
    closed_trades([D(1), D(3)], buy_exchange=kraken, sell_exchange=coinbase)

    venues = performance_of(build_report(period, Filters())).venues

    # Each trade's one order (on the buy venue) filled 1 at 100.
    assert venues == (VenueReturn("Coinbase", D(0), D(4)), VenueReturn("Kraken", D(200), D(4)))
    assert venues[1].return_bps == D(200)


@pytest.mark.django_db
def test_a_period_without_closed_trades_has_no_drawdown(period):
    figures = performance_of(build_report(period, Filters()))

    assert figures.drawdown is None and figures.closed == 0 and figures.profit_factor is None


@pytest.mark.django_db
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(-50, 50).map(D), min_size=1, max_size=12))
def test_the_database_drawdown_matches_the_brute_force(period, pnls):
    Order.objects.all().delete()
    Trade.objects.all().delete()
    closed_trades(pnls)

    drawdown = performance_of(build_report(period, Filters())).drawdown

    assert (drawdown.amount if drawdown else D(0)) == brute_drawdown(pnls)
    if drawdown:
        assert drawdown == max_drawdown(timed(pnls))


def test_holding_values_price_each_asset_in_its_quote_and_name_the_unpriced():
    start = {"BTC": D(1), "USD": D(100), "DOGE": D(5)}
    end = {"BTC": D("0.5"), "USD": D(205)}
    prices = {"BTC": ("USD", D(200))}

    holdings, unpriced = holding_values(start, end, prices)

    assert holdings == [Holding("USD", D(300), D(305))]
    assert holdings[0].difference == D(5)
    assert unpriced == ["DOGE"]


@pytest.mark.django_db
def test_holding_the_start_is_valued_at_the_last_fill_before_the_period_ends(period):
    venue = ExchangeFactory(slug="kraken")
    account = open_account(exchange=venue, mode="paper")
    before, during = START - timedelta(days=1), START + timedelta(hours=1)
    for asset, amount, at in [
        ("BTC", 1, before),
        ("USD", 100, before),
        ("BTC", "-0.5", during),
        ("USD", 105, during),
        ("USD", 7, START + timedelta(days=2)),
    ]:
        LedgerEntry.objects.create(
            account=account, asset=asset, amount=D(amount), kind="fill", created_at=at
        )
    [trade] = closed_trades([D(1)])
    order = trade.orders.get()
    FillFactory(order=order, price=D(210), at=START + timedelta(minutes=1))
    FillFactory(order=order, price=D(200), at=START + timedelta(hours=2))  # the last in the day
    FillFactory(order=order, price=D(999), at=START + timedelta(days=1))  # after the period

    holdings, unpriced = holding_of(period, Filters())

    assert holdings == [Holding("USD", D(300), D(305))]  # 1 BTC + 100 against 0.5 BTC + 205
    assert unpriced == []
    assert holding_of(period, Filters(mode="live")) == ([], [])


def test_a_high_reached_twice_dates_the_fall_from_the_later():
    # Found by the database comparison: 1, 1, 0 falls from the second 1.
    pnls = timed([D(1), D(0), D(-1)])
    (_, _), (at2, _), (at3, _) = pnls

    assert max_drawdown(pnls) == Drawdown(D(1), at2, at3)


def settle(series, first: date) -> list[tuple[datetime, int, Decimal]]:
    """The closed trades of `series` (as `settled` times them) in the database."""
    trades = []
    for at, _, pnl in settled(series, first):
        trade = TradeFactory(realised_net_profit=pnl, created_at=at, closed_at=at)
        trades.append((at, trade.pk, pnl))
    return trades


@pytest.mark.django_db
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(day_series.filter(lambda s: s and sum(new_day for _, new_day, _ in s) < 10))
def test_the_rolled_up_drawdown_is_the_drawdown_of_the_trades(series):
    for model in (Trade, RollupDay, DailyDrawdown):  # the examples share one transaction
        model.objects.all().delete()
    today = timezone.now().date()
    first = today - timedelta(days=sum(new_day for _, new_day, _ in series))
    trades = settle(series, first)  # the last day is today, read from the trades
    period = Period(first, today)
    from_trades = performance_of(build_report(period, Filters())).drawdown
    roll_up(first, today)

    rolled = performance_of(build_report(period, Filters())).drawdown

    assert rolled == from_trades == max_drawdown((at, pnl) for at, _, pnl in trades)


PAIRS = [("kraken", "coinbase"), ("coinbase", "binance"), ("binance", "kraken")]


@pytest.mark.django_db
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    day_series.filter(lambda s: s and sum(new_day for _, new_day, _ in s) < 5),
    st.lists(
        st.tuples(
            st.sampled_from(["BTC-USD", "ETH-USD"]),
            st.integers(0, 2),
            st.sampled_from(["paper", "live"]),
        ),
        min_size=30,
        max_size=30,
    ),
)
def test_the_rolled_up_drawdown_of_a_filter_is_that_of_its_trades(series, places):
    for model in (Trade, RollupDay, DailyDrawdown):  # the examples share one transaction
        model.objects.all().delete()
    today = timezone.now().date()
    first = today - timedelta(days=sum(new_day for _, new_day, _ in series))
    trades = []
    for (at, _, pnl), (symbol, pair, mode) in zip(settled(series, first), places, strict=False):
        buy, sell = (ExchangeFactory(slug=slug) for slug in PAIRS[pair])
        opportunity = OpportunityFactory(
            market=MarketFactory(symbol=symbol), buy_exchange=buy, sell_exchange=sell
        )
        TradeFactory(
            opportunity=opportunity, mode=mode, realised_net_profit=pnl, created_at=at, closed_at=at
        )
        trades.append((at, pnl, symbol, PAIRS[pair], mode))
    roll_up(first, today)
    period = Period(first, today)
    btc, kraken = MarketFactory(symbol="BTC-USD"), ExchangeFactory(slug="kraken")

    for filters, chosen in [
        (Filters(market=btc), lambda symbol, pair, mode: symbol == "BTC-USD"),
        (Filters(venue=kraken), lambda symbol, pair, mode: "kraken" in pair),
        (Filters(mode="live"), lambda symbol, pair, mode: mode == "live"),
        (
            Filters(btc, kraken, "paper"),
            lambda s, p, m: s == "BTC-USD" and "kraken" in p and m == "paper",
        ),
    ]:
        drawdown = performance_of(build_report(period, filters)).drawdown
        selected = [(at, pnl) for at, pnl, *place in trades if chosen(*place)]

        assert drawdown == max_drawdown(selected), filters


@pytest.mark.django_db
def test_rolled_up_figures_are_those_of_the_trades():
    today = timezone.now().date()
    first = today - timedelta(days=2)
    kraken = ExchangeFactory(slug="kraken", name="Kraken")
    coinbase = ExchangeFactory(slug="coinbase", name="Coinbase")
    for days, pnl in ((0, D(3)), (1, D(-1)), (2, D(2))):
        at = day_start(first) + timedelta(days=days, hours=9)
        trade = TradeFactory(
            opportunity=OpportunityFactory(buy_exchange=kraken, sell_exchange=coinbase),
            realised_net_profit=pnl,
            created_at=at,
            closed_at=at,
        )
        # 1.666666666665e-12 of notional each: rounded per rolled day, the sum would be 6e-12.
        OrderFactory(trade=trade, amount=D("0.333333333333"), limit_price=D("5E-12"), fee=D(1))
    period = Period(first, today)
    from_trades = performance_of(build_report(period, Filters()))
    roll_up(first, today)

    rolled = performance_of(build_report(period, Filters()))

    assert rolled == from_trades
    assert (rolled.closed, rolled.gross_won, rolled.gross_lost, rolled.fees) == (3, 5, -1, 3)
    assert rolled.drawdown.amount == D(1)
    assert rolled.venues == (
        VenueReturn("Coinbase", D(0), D(4)),
        VenueReturn("Kraken", D("0.000000000005"), D(4)),
    )
