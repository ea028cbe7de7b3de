"""Issue 14: a live cross-venue trade on each pair of the real venue modules (Coinbase, Kraken,
Binance, and KuCoin with Kraken), each against its simulated venue over loopback, realises its
expected PnL exactly and leaves the desk's ledger equal to what the simulated venues hold for
the desk's keys."""

import asyncio
import base64
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db.models import Sum

from markets.models import ExchangeCredential
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.kraken.orders import cl_ord_id
from markets.venues.kraken.sim import ASSET_CODES
from portfolio.models import Balance, LedgerEntry
from portfolio.services import open_account
from tests.factories import (
    ExchangeFactory,
    ListingFactory,
    MarketFactory,
    OpportunityFactory,
    RiskProfileFactory,
    publish_test_book,
)
from tests.loops import on_loop
from trading.execution.orders import client_order_id
from trading.models import Order, Trade
from trading.tasks import execute_opportunity

D = Decimal
# One market every venue here lists against USDT (the simulated Binance quotes only USDT/USDC).
MARKET = "BTC-USDT"
FUNDING = {"BTC": D(2), "USDT": D(100_000)}
# The books hold still: only the orders move them.
STILL = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)
# Per venue: its symbol, tick, lot, and the taker fee its simulator charges (its default).
VENUES = {
    "coinbase": ("BTC-USDT", D("0.01"), D("0.0001"), D(60)),
    "kraken": ("BTC/USDT", D("0.1"), D("0.00000001"), D(26)),
    "binance": ("BTCUSDT", D("0.01"), D("0.00001"), D(10)),
    "kucoin": ("BTC-USDT", D("0.1"), D("0.00000001"), D(10)),
}
# The buy venue's asks and the sell venue's bids: 1 BTC bought through two asks (VWAP 100.2),
# sold through two bids (VWAP 102.7); the far side of each book is out of the way.
ASKS = [(D(100), D("0.6")), (D("100.5"), D(1))]
BIDS = [(D(103), D("0.4")), (D("102.5"), D(1))]
SIZE, BUY_VWAP, BUY_LIMIT = D(1), D("100.2"), D("100.5")
SELL_VWAP, SELL_LIMIT = D("102.7"), D("102.5")
FAR_BIDS, FAR_ASKS = [(D(90), D(1))], [(D(110), D(1))]
# Each pair, bought on the first and sold on the second, and its net: 102.7 - 100.2 less the
# taker fees (Coinbase 60, Kraken 26, Binance 10, KuCoin 10 bps) on 100.2 bought and 102.7 sold.
PAIRS = [
    ("coinbase", "kraken", D("1.63178")),
    ("coinbase", "binance", D("1.7961")),
    ("kraken", "binance", D("2.13678")),
    ("kucoin", "kraken", D("2.13278")),
]


@pytest.fixture
def sim(loop):
    """The simulated venues on one free loopback port, each listing BTC against USDT."""
    listings = {
        slug: SimListing(symbol, tick, lot) for slug, (symbol, tick, lot, _) in VENUES.items()
    }
    markets = {MARKET: MarketSpec(mid=D(101), size=D(1), listings=listings)}
    simulator = VenueSimulator(markets=markets, profiles=dict.fromkeys(VENUES, STILL))
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    yield simulator
    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


def give_key(sim, slug: str) -> tuple[str, str, str]:
    """A key on the simulated `slug`, funded with FUNDING where the venue keeps balances; the
    (api key, secret, passphrase) the desk stores for it."""
    venue = sim.venues[slug]
    if slug == "coinbase":
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        name = "organizations/org-1/apiKeys/desk"
        venue.keys[name] = private.public_key()
        venue.balances[name] = dict(FUNDING)
        return name, pem, ""
    if slug == "kraken":
        secret = base64.b64encode(b"the desk's simulated kraken secret")
        venue.keys["kraken-desk"] = secret.decode()
        venue.balances["kraken-desk"] = {ASSET_CODES.get(a, a): v for a, v in FUNDING.items()}
        return "kraken-desk", secret.decode(), ""
    if slug == "kucoin":
        venue.open_account("kucoin-desk", "kucoin-secret", FUNDING, passphrase="kucoin passphrase")
        return "kucoin-desk", "kucoin-secret", "kucoin passphrase"
    venue.keys["binance-desk"] = "binance-secret"  # the simulated Binance keeps no balances
    return "binance-desk", "binance-secret", ""


def venue_balances(sim, slug: str, api_key: str) -> dict[str, Decimal]:
    """What the simulated venue holds for `api_key`, by the desk's asset names. The simulated
    Binance keeps no wallet: its holdings are the funding moved by its own record of fills."""
    venue = sim.venues[slug]
    if slug in ("coinbase", "kucoin"):
        held = venue.balances[api_key]
    elif slug == "kraken":
        names = {code: asset for asset, code in ASSET_CODES.items()}
        held = {names.get(code, code): amount for code, amount in venue.balances[api_key].items()}
    else:
        held = dict(FUNDING)
        for trades in venue.trades.values():
            for t in trades:
                sign = 1 if t["isBuyer"] else -1
                qty, value = D(t["qty"]), D(t["quoteQty"])
                held["BTC"] += sign * qty
                held["USDT"] -= sign * value
                held[t["commissionAsset"]] = held.get(t["commissionAsset"], D(0)) - D(
                    t["commission"]
                )
    return {asset: amount.normalize() for asset, amount in held.items()}


def venue_orders(sim, slug: str, trade: Trade, side: str) -> tuple[dict[str, dict], int]:
    """The simulated venue's own record of the orders the trade's `side` leg placed there, by
    the venue's order id, and how many order requests it saw for that leg."""
    venue, cid = sim.venues[slug], client_order_id(trade, side)
    if slug == "kraken":  # by txid; the client id goes out as a UUID
        wire = cl_ord_id(cid)
        orders = {txid: o for txid, o in venue.orders.items() if o["cl_ord_id"] == wire}
        return orders, venue.posts[wire]
    id_field = {"coinbase": "order_id", "kucoin": "id"}.get(slug, "orderId")
    orders = {str(o[id_field]): o for c, o in venue.orders.items() if c == cid}
    return orders, venue.posts[cid]


def ledger(slug: str) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The live account's balances and the sums of its ledger entries, per asset."""
    rows = Balance.objects.filter(account__exchange__slug=slug, account__mode="live")
    balances = {a: v.normalize() for a, v in rows.values_list("asset", "amount")}
    entries = (
        LedgerEntry.objects.filter(account__exchange__slug=slug, account__mode="live")
        .values("asset")
        .annotate(total=Sum("amount"))
    )
    return balances, {e["asset"]: e["total"].normalize() for e in entries}


def desk(sim, loop, buy_slug: str, sell_slug: str):
    """The two exchanges at their simulators, credentials stored, accounts funded as the venues
    are, an active live profile, both books set, and the opportunity those books give."""
    market = MarketFactory(symbol=MARKET)
    exchanges = {}
    for slug in (buy_slug, sell_slug):
        symbol, tick, lot, fee = VENUES[slug]
        exchange = ExchangeFactory(slug=slug, taker_fee_bps=fee, rest_url=sim.urls[f"{slug}_rest"])
        ListingFactory(
            exchange=exchange, market=market, venue_symbol=symbol, tick_size=tick, lot_size=lot
        )
        api_key, secret, passphrase = give_key(sim, slug)
        credential = ExchangeCredential(exchange=exchange)
        credential.set_keys(api_key=api_key, secret=secret, passphrase=passphrase)
        credential.save()
        open_account(exchange=exchange, mode="live", funding=dict(FUNDING))
        exchanges[slug] = (exchange, api_key)
    profile = RiskProfileFactory(name="live pairs", mode="live")
    profile.allowed_exchanges.set([e for e, _ in exchanges.values()])
    profile.allowed_markets.set([market])
    for slug, bids, asks in ((buy_slug, FAR_BIDS, ASKS), (sell_slug, BIDS, FAR_ASKS)):
        on_loop(loop, sim.venues[slug].set_book, VENUES[slug][0], bids=bids, asks=asks)
        publish_test_book(slug, MARKET, bids=bids, asks=asks)
    buy, sell = exchanges[buy_slug][0], exchanges[sell_slug][0]
    # What the detector reports for 1 BTC over these books, fees at each venue's taker rate.
    gross = SIZE * (SELL_VWAP - BUY_VWAP)
    fees = (SIZE * BUY_VWAP * buy.taker_fee_bps + SIZE * SELL_VWAP * sell.taker_fee_bps) / 10_000
    opportunity = OpportunityFactory(
        market=market,
        buy_exchange=buy,
        sell_exchange=sell,
        size=SIZE,
        buy_vwap=BUY_VWAP,
        sell_vwap=SELL_VWAP,
        buy_limit=BUY_LIMIT,
        sell_limit=SELL_LIMIT,
        gross_profit=gross,
        fees=fees,
        net_profit=gross - fees,
        net_bps=(gross - fees) / (SIZE * BUY_VWAP) * 10_000,
        peak_net_profit=gross - fees,
        peak_net_bps=(gross - fees) / (SIZE * BUY_VWAP) * 10_000,
    )
    return opportunity, {slug: key for slug, (_, key) in exchanges.items()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("buy_slug", "sell_slug", "net"), PAIRS, ids=[f"{b}-{s}" for b, s, _ in PAIRS]
)
def test_a_live_cross_venue_trade_realises_its_expected_pnl_and_the_ledger_is_the_venues(
    settings, sim, loop, buy_slug, sell_slug, net
):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    opportunity, keys = desk(sim, loop, buy_slug, sell_slug)

    trade = Trade.objects.get(pk=execute_opportunity(opportunity.pk, mode="live"))

    assert (trade.mode, trade.state, trade.failure_reason) == ("live", "closed", "")
    # Expected: the opportunity's net at each venue's taker fee; realised: the venues' fills.
    assert trade.expected_net_profit == opportunity.net_profit == net
    assert trade.realised_net_profit == trade.expected_net_profit
    legs = Order.objects.filter(trade=trade)
    assert sorted(legs.values_list("purpose", "side", "state", "filled_amount")) == [
        ("leg", "buy", "filled", SIZE),
        ("leg", "sell", "filled", SIZE),
    ]
    for side, slug in (("buy", buy_slug), ("sell", sell_slug)):
        placed, posts = venue_orders(sim, slug, trade, side)
        assert (list(placed), posts) == ([legs.get(side=side).venue_order_id], 1), slug
        balances, entries = ledger(slug)
        held = venue_balances(sim, slug, keys[slug])
        assert balances == entries == held, slug
        assert held != {a: v.normalize() for a, v in FUNDING.items()}  # the venue did trade
