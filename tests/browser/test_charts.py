"""The charts in a real Chromium: the market page's mid prices with the desk's trades marked
and the spread beneath, the portfolio's inventory per venue; on a running demo desk whose
engine samples the books, with a trade of known size and PnL seeded into its database."""

import os
import re
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from markets.money import plain
from tests.browser.test_desk import (
    ARTIFACTS,
    CHROMIUM,
    ROOT,
    browser,
    chromium,
    logged_in,
    reset_if_tripped,
    serve_desk,
)
from tests.databases import fresh_database

__all__ = ["browser", "chromium"]  # the module's Chromium, shared with test_desk's fixtures

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
)

# A closed trade of 0.4321 BTC, bought and sold on the venues and at the prices given.
SEED_TRADE = """
from datetime import timedelta
from decimal import Decimal as D
from django.utils import timezone
from markets.models import Exchange, Market
from trading.models import Opportunity, Order, Trade
buy, sell, size = D("{buy}"), D("{sell}"), D("0.4321")
at = timezone.now() - timedelta(seconds=2)
o = Opportunity.objects.create(
    market=Market.objects.get(symbol="BTC-USD"), buy_exchange=Exchange.objects.get(slug="{buyer}"),
    sell_exchange=Exchange.objects.get(slug="{seller}"), state="closed", opened_at=at, closed_at=at,
    detected_at=at, size=size, buy_vwap=buy, sell_vwap=sell, buy_limit=buy, sell_limit=sell,
    gross_profit=D("1.3"), fees=D("0.0655"), net_profit=D("1.2345"), net_bps=D("5"),
    peak_net_profit=D("1.2345"), peak_net_bps=D("5"))
t = Trade.objects.create(
    opportunity=o, mode="paper", state="closed", requested_size=size,
    expected_net_profit=D("1.2345"), realised_net_profit=D("1.2345"), created_at=at, closed_at=at,
    state_changed_at=at)
for side, venue, price in (("buy", o.buy_exchange, buy), ("sell", o.sell_exchange, sell)):
    Order.objects.create(
        trade=t, exchange=venue, side=side, limit_price=price, amount=size, filled_amount=size,
        average_price=price, client_order_id=f"chart-{{side}}-{{t.pk}}", state="filled")
print(t.pk)
"""

# How many pixels of a chart's canvas are painted, and a digest of them (to see it redrawn).
PAINTED = """(() => {
  const c = document.querySelector('%s canvas');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, h = 0;
  for (let i = 3; i < px.length; i += 4) {
    if (px[i]) { n++; h = (h * 31 + px[i - 3] + i) %% 1000000007; }
  }
  return [n, h];
})()"""


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("charts")
    with fresh_database(f"{connection.settings_dict['NAME']}_{tmp.name}") as url:
        yield tmp, url


@pytest.fixture(scope="module")
def desk(database):
    tmp, url = database
    yield from serve_desk(tmp, url)


def seed_trade(database: tuple, *, buy: tuple[str, str], sell: tuple[str, str]) -> int:
    """Write the trade, bought and sold at (venue slug, price), into the running desk's
    database; its id."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"DATABASE_URL": database[1], "DJANGO_DEBUG": "1"}
    script = SEED_TRADE.format(buyer=buy[0], buy=buy[1], seller=sell[0], sell=sell[1])
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr.splitlines()[-3:]
    return int(done.stdout.split()[-1])


def painted(page: Page, chart: str) -> tuple[int, int]:
    count, digest = page.evaluate(PAINTED % chart)
    return count, digest


def venue_mid(page: Page, venue: str) -> str:
    mid = page.locator(f'#depth .depth-venue[data-venue="{venue}"]')
    expect(mid).not_to_have_attribute("data-mid", "")
    return mid.get_attribute("data-mid")


def test_the_market_chart_draws_each_venues_mid_and_names_a_trade_on_hover(browser, desk, database):
    page = logged_in(browser, desk, "viewer")
    page.goto(f"{desk}/markets/BTC-USD/")
    # Bought where BTC is cheaper, sold where it is dearer, each at that venue's mid now.
    (_, buy, buyer), (_, sell, seller) = sorted(
        (Decimal(venue_mid(page, slug)), venue_mid(page, slug), name)
        for slug, name in (("coinbase", "Coinbase"), ("kraken", "Kraken"))
    )
    trade = seed_trade(database, buy=(buyer.lower(), buy), sell=(seller.lower(), sell))
    page.wait_for_timeout(3000)  # a few more seconds of sampled tops

    page.reload()

    legend = page.locator("#price-chart .u-legend")
    expect(legend).to_contain_text("Coinbase")
    expect(legend).to_contain_text("Kraken")
    before = painted(page, "#price-chart")
    assert before[0] > 1000 and painted(page, "#spread-chart")[0] > 1000
    mark = page.locator(f'#price-chart .trade-buy[aria-label^="Trade #{trade} "]')
    expect(mark).to_be_visible()
    mark.hover()
    tip = mark.locator(".trade-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(
        f"bought on {buyer} at {plain(Decimal(buy))}, sold on {seller} at {plain(Decimal(sell))}, "
        "size 0.4321 BTC, net PnL 1.23 USD"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#price-chart").screenshot(path=str(ARTIFACTS / "market-chart.png"))
    # The sell leg is marked too, and the pushes keep drawing the chart without a reload.
    expect(
        page.locator(f'#price-chart .trade-sell[aria-label^="Trade #{trade} "]')
    ).to_be_attached()
    page.evaluate("window.notReloaded = true")
    page.wait_for_timeout(2500)
    assert painted(page, "#price-chart")[1] != before[1]
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#marks-count")).to_contain_text(re.compile(r"\d+ trades? of the last"))
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("#price-chart .u-legend")).to_contain_text("Coinbase")
    page.screenshot(path=str(ARTIFACTS / "market-charts-dark.png"), full_page=True)
    assert not [e for e in page.errors if "Content Security Policy" in e]


def test_the_portfolio_charts_each_venues_inventory_of_the_chosen_asset(browser, desk):
    page = logged_in(browser, desk, "viewer")
    page.goto(f"{desk}/portfolio/")
    caption = page.locator("#inventory-caption")
    expect(caption).to_contain_text("BTC held per venue (paper)")
    expect(page.locator("#inventory-chart .u-legend")).to_contain_text("Coinbase")
    assert painted(page, "#inventory-chart")[0] > 1000
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Asset").select_option("USD")

    expect(caption).to_contain_text("USD held per venue (paper)")
    expect(page).to_have_url(re.compile(r"asset=USD"))
    expect(page.locator("#inventory-chart .u-legend")).to_contain_text("Kraken")
    assert painted(page, "#inventory-chart")[0] > 1000
    assert page.evaluate("window.notReloaded") is True
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#inventory").screenshot(path=str(ARTIFACTS / "portfolio-inventory.png"))
    assert not [e for e in page.errors if "Content Security Policy" in e]


def test_a_trade_the_desk_makes_is_marked_and_moves_the_inventory_without_a_reload(browser, desk):
    operator = logged_in(browser, desk, "trader")
    charts, inventories = {}, {}
    for symbol in ("BTC-USD", "ETH-USD"):
        charts[symbol] = logged_in(browser, desk, "trader")
        charts[symbol].goto(f"{desk}/markets/{symbol}/")
        inventories[symbol] = logged_in(browser, desk, "viewer")
        inventories[symbol].goto(f"{desk}/portfolio/?asset={symbol.split('-')[0]}")
    marks = {s: page.locator("#price-chart .trade-buy") for s, page in charts.items()}
    for page in [*charts.values(), *inventories.values()]:
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        page.evaluate("window.notReloaded = true")
    before = {s: marks[s].count() for s in charts}
    captions = {s: page.locator("#inventory-caption") for s, page in inventories.items()}
    held = {s: captions[s].inner_text() for s in inventories}

    traded = None
    deadline = time.monotonic() + 180
    while traded is None and time.monotonic() < deadline:
        reset_if_tripped(operator)  # so the desk keeps trading
        operator.wait_for_timeout(1000)
        traded = next((s for s in charts if marks[s].count() > before[s]), None)

    assert traded is not None, "the demo desk made no trade in 180 s"
    expect(charts[traded].locator("#marks-count")).to_contain_text(f"{marks[traded].count()} trade")
    # The ledger moved: the inventory of the traded base is asked again, with the same choices.
    expect(captions[traded]).not_to_have_text(held[traded], timeout=20_000)
    expect(captions[traded]).to_contain_text(f"{traded.split('-')[0]} held per venue")
    for page in [*charts.values(), *inventories.values()]:
        assert page.evaluate("window.notReloaded") is True
        assert not [e for e in page.errors if "Content Security Policy" in e]
