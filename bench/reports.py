"""Reports at scale: a year of 1,000,000 trades with legs and fills in PostgreSQL; times the
rollup, the reports page for the year (target < 1 s), each of its performance figures alone and
the CSV export of a month (< 30 s)."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "REPORTS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/arbsite_bench"
)
TRADES = int(os.environ.get("REPORTS_BENCH_TRADES", "1000000"))

# Generated in the database (INSERT ... SELECT over generate_series): trade i takes
# opportunity i, on market 1 + i % 3 and a venue pair of three venues, closed at a point spread
# evenly over the year before the seed; every 10th is live, every 50th failed, every 97th hedged.
SEED_SQL = """
CREATE TEMP TABLE seed AS
SELECT i,
       now() - (interval '365 days') * (%(n)s - i) / %(n)s AS at,
       %(m0)s + i %% 3 AS market,
       (i / 3) %% 3 AS b,
       ((i / 3) %% 3 + 1 + (i / 9) %% 2) %% 3 AS s,
       round(100 + (i %% 1000) / 10.0, 2) AS price,
       i %% 50 = 0 AS failed
FROM generate_series(1, %(n)s) AS i;

INSERT INTO trading_opportunity (id, market_id, buy_exchange_id, sell_exchange_id, state,
  opened_at, closed_at, close_reason, size, buy_vwap, sell_vwap, gross_profit, fees, net_profit,
  net_bps, levels_walked, detected_at, peak_net_profit, peak_net_bps, updates, refusals)
SELECT i, market, %(ex0)s + b, %(ex0)s + s, 'closed', at - interval '3 seconds',
  at - interval '3 seconds' + (i %% 900) * interval '1 second', '', 0.5, price,
  price * 1.003, price * 0.0015, price * 0.001, price * 0.0005, 5, '{}',
  at - interval '3 seconds', price * 0.0006, 6, 1, '{}'
FROM seed;

INSERT INTO trading_opportunity (id, market_id, buy_exchange_id, sell_exchange_id, state,
  opened_at, closed_at, close_reason, size, buy_vwap, sell_vwap, gross_profit, fees, net_profit,
  net_bps, levels_walked, detected_at, peak_net_profit, peak_net_bps, updates, refusals)
SELECT %(n)s + i, market, %(ex0)s + b, %(ex0)s + s, 'closed', at, at + interval '2 seconds', '',
  0.5, price, price * 1.002, price * 0.001, price * 0.001, 0, 0, '{}', at, price * 0.0002, 2, 1,
  jsonb_build_object('max notional', 1 + i %% 3, 'daily loss', i %% 2)
FROM seed WHERE i %% 5 = 0;

INSERT INTO trading_trade (id, opportunity_id, mode, state, requested_size, expected_net_profit,
  realised_net_profit, failure_reason, created_at, submitted_at, filled_at, closed_at,
  state_changed_at)
SELECT i, i, CASE WHEN i %% 10 = 0 THEN 'live' ELSE 'paper' END,
  CASE WHEN failed THEN 'failed' ELSE 'closed' END, 0.5, price * 0.0005,
  CASE WHEN failed THEN NULL ELSE round(0.5 * price * 0.003 - 0.5 * price * 0.001
       - 0.5 * price * 1.003 * 0.001, 12) END,
  '', at - interval '1 second', at - interval '1 second', at, at, at
FROM seed;

INSERT INTO trading_order (id, trade_id, exchange_id, purpose, side, limit_price, amount,
  filled_amount, average_price, fee, client_order_id, venue_order_id, state, error, created_at,
  updated_at)
SELECT 2 * i - 1 + leg, i, %(ex0)s + CASE WHEN leg = 0 THEN b ELSE s END, 'leg',
  CASE WHEN leg = 0 THEN 'buy' ELSE 'sell' END, p, 0.5,
  CASE WHEN failed THEN 0 ELSE 0.5 END, CASE WHEN failed THEN NULL ELSE p END,
  CASE WHEN failed THEN 0 ELSE round(0.5 * p * 0.001, 12) END,
  'bench-' || (2 * i - 1 + leg), '', CASE WHEN failed THEN 'canceled' ELSE 'filled' END, '', at, at
FROM (SELECT seed.*, leg, CASE WHEN leg = 0 THEN price ELSE price * 1.003 END AS p
      FROM seed CROSS JOIN (VALUES (0), (1)) AS legs(leg)) AS legs;

INSERT INTO trading_order (id, trade_id, exchange_id, purpose, side, limit_price, amount,
  filled_amount, average_price, fee, client_order_id, venue_order_id, state, error, created_at,
  updated_at)
SELECT 2 * %(n)s + i, i, %(ex0)s + s, 'hedge', 'sell', price, 0.1, 0.1, price, 0,
  'bench-h-' || i, '', 'filled', '', at, at
FROM seed WHERE i %% 97 = 0 AND NOT failed;

INSERT INTO trading_fill (order_id, price, amount, fee, at)
SELECT id, average_price, filled_amount, fee, updated_at FROM trading_order
WHERE filled_amount > 0 AND purpose = 'leg';
"""


def _seed(connection) -> None:
    from markets.models import Exchange, Market

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE trading_fill, trading_order, trading_tradeevent, trading_trade,"
            " trading_opportunity, trading_dailyrollup, trading_dailyopportunityrollup,"
            " trading_rollupday, trading_export CASCADE"
        )
    for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
        base, quote = symbol.split("-")
        Market.objects.get_or_create(symbol=symbol, defaults={"base": base, "quote": quote})
    venues = [
        Exchange.objects.get_or_create(
            slug=f"bench{n}",
            defaults={"name": f"Bench {n}", "ws_url": "ws://127.0.0.1:1/", "taker_fee_bps": 10},
        )[0]
        for n in range(3)
    ]
    markets = list(
        Market.objects.filter(symbol__in=["BTC-USD", "ETH-USD", "SOL-USD"]).order_by("pk")
    )
    for rows in (markets, venues):  # the SQL numbers them from the first id
        assert [r.pk for r in rows] == list(range(rows[0].pk, rows[0].pk + 3))
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"n": TRADES, "ex0": venues[0].pk, "m0": markets[0].pk})
        for table in ("trading_opportunity", "trading_trade", "trading_order", "trading_fill"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("ANALYZE")


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _time_figures(period) -> None:
    """The report page's performance figures for `period`, each part alone as performance_of
    and holding_of run it, then all of them: medians of 3."""
    from trading.reports import queries
    from trading.reports.figures import Filters

    filters = Filters()
    report = queries.build_report(period, filters)
    rolled = queries.rolled_days(period)
    figures = {
        "profit factor, expectancy, fees share: the report's total (rollups)": lambda: (
            queries.build_report(period, filters)
        ),
        "capital per venue (venue rollups, today's orders)": lambda: queries._capital_by_venue(
            period, filters, rolled
        ),
        "maximum drawdown (the days' runs, today's trades)": lambda: queries._drawdown(
            period, filters, rolled
        ),
        "maximum drawdown of the paper trades (a filter's runs)": lambda: queries._drawdown(
            period, Filters(mode="paper"), rolled
        ),
        "holding value (ledger at both ends, end prices)": lambda: queries.holding_of(
            period, filters
        ),
        "all of them (performance_of and holding_of, given the report)": lambda: (
            queries.performance_of(report),
            queries.holding_of(period, filters),
        ),
    }
    print(f"performance figures of the year ({period.first}..{period.last}), median of 3:")
    for name, figure in figures.items():
        seconds, _ = _timed(figure, repeat=3)
        print(f"  {name}: {seconds * 1000:,.0f} ms")


def run() -> None:
    """Inside the bench database's own process: seed (cached), roll up, time page and export."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from trading.models import Export, Trade
    from trading.reports import exports
    from trading.reports.figures import Period
    from trading.reports.rollups import roll_up

    call_command("migrate", verbosity=0)
    if Trade.objects.count() != TRADES:
        seconds, _ = _timed(lambda: _seed(connection))
        print(f"seeded {TRADES:,} trades with legs and fills in {seconds:.1f} s")
    else:
        print(f"{TRADES:,} trades already seeded (cached)")
    today = timezone.now().date()
    first = today - timezone.timedelta(days=366)
    seconds, rows = _timed(lambda: roll_up(first, today))
    print(f"rollup of the year: {rows:,} rollup rows in {seconds:.1f} s")

    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="Viewer"))
    client = Client()
    client.force_login(user)
    client.get("/reports/?period=365d")  # warm up connections and templates
    seconds, response = _timed(lambda: client.get("/reports/?period=365d"), repeat=5)
    assert response.status_code == 200
    print(f"reports page, 365 days: {seconds * 1000:.0f} ms median of 5 (target < 1000 ms)")

    _time_figures(Period(today - timezone.timedelta(days=364), today))

    since, until = today - timezone.timedelta(days=30), today - timezone.timedelta(days=1)
    export = Export.objects.create(
        user=user,
        kind="trades",
        format="csv",
        params={"period": "custom", "since": since.isoformat(), "until": until.isoformat()},
        expires_at=timezone.now() + exports.KEEP_FOR,
    )
    seconds, _ = _timed(lambda: exports.build(export.pk))
    export.refresh_from_db()
    size = export.file.size / 1e6
    print(
        f"CSV export of a month ({since}..{until}): {export.rows:,} rows, {size:.0f} MB"
        f" in {seconds:.1f} s (target < 30 s)"
    )
    export.file.delete()


def _ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    print("## Reports (bench/reports.py)")
    _ensure_database()
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "arbsite.settings",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "-m", "bench.reports", "--run"], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--run"]:
        run()
    else:
        main()
