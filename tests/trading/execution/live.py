"""A live desk on the real venue modules (Coinbase, Kraken, Binance), each against its simulated
venue over loopback: keys, funded accounts, still books, one opportunity, and the venues' own
records of the orders to check the desk's against."""

import base64
from decimal import Decimal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db.models import Sum

from markets.models import Exchange, ExchangeCredential, Market
from markets.simulator.specs import VenueProfile
from markets.venues.kraken.orders import cl_ord_id
from portfolio.models import Account, Balance, LedgerEntry
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
from trading.models import Trade
from trading.reconciliation import reconcile

D = Decimal
# One market all three venues list against USDT (the simulated Binance quotes only USDT/USDC).
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
PASSPHRASES = {"kucoin": "the desk's kucoin passphrase"}  # the venues whose keys carry one


def give_key(sim, slug: str) -> tuple[str, str]:
    """A key on the simulated `slug`, funded with FUNDING; the (api key, secret) the desk stores
    (with PASSPHRASES[slug] where the venue's keys carry one)."""
    if slug == "coinbase":
        private = ec.generate_private_key(ec.SECP256R1())
        secret = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        api_key = "organizations/org-1/apiKeys/desk"
    else:
        api_key, secret = f"{slug}-desk", base64.b64encode(f"{slug} secret".encode()).decode()
    passphrase = {"passphrase": PASSPHRASES[slug]} if slug in PASSPHRASES else {}
    sim.venues[slug].open_account(api_key, secret, FUNDING, **passphrase)
    return api_key, secret


def venue_balances(sim, slug: str, api_key: str) -> dict[str, Decimal]:
    """What the simulated venue holds for `api_key`, by the desk's asset names."""
    return {a: amount.normalize() for a, amount in sim.venues[slug].holdings(api_key).items()}


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
    are and just reconciled with them, an active live profile, both books set, and the
    opportunity those books give."""
    market = MarketFactory(symbol=MARKET)
    exchanges = {}
    for slug in (buy_slug, sell_slug):
        symbol, tick, lot, fee = VENUES[slug]
        exchange = ExchangeFactory(slug=slug, taker_fee_bps=fee, rest_url=sim.urls[f"{slug}_rest"])
        ListingFactory(
            exchange=exchange, market=market, venue_symbol=symbol, tick_size=tick, lot_size=lot
        )
        api_key, secret = give_key(sim, slug)
        credential = ExchangeCredential(exchange=exchange)
        credential.set_keys(api_key=api_key, secret=secret, passphrase=PASSPHRASES.get(slug, ""))
        credential.save()
        open_account(exchange=exchange, mode="live", funding=dict(FUNDING))
        exchanges[slug] = (exchange, api_key)
    profile = RiskProfileFactory(name="live pairs", mode="live")
    profile.allowed_exchanges.set([e for e, _ in exchanges.values()])
    profile.allowed_markets.set([market])
    for exchange, _ in exchanges.values():  # as the engine does before it trades live
        reconcile(Account.objects.get(exchange=exchange, mode="live"))
    # The books last: the reconciliations' calls take seconds on a loaded machine, and the
    # profile refuses a book older than 2 s.
    opportunity = cross(sim, loop, buy_slug, sell_slug)
    return opportunity, {slug: key for slug, (_, key) in exchanges.items()}


def cross(sim, loop, buy_slug: str, sell_slug: str):
    """Both books set on the desk's venues (asks to buy from on one, bids to sell to on the
    other), and the opportunity those books give."""
    for slug, bids, asks in ((buy_slug, FAR_BIDS, ASKS), (sell_slug, BIDS, FAR_ASKS)):
        on_loop(loop, sim.venues[slug].set_book, VENUES[slug][0], bids=bids, asks=asks)
        publish_test_book(slug, MARKET, bids=bids, asks=asks)
    buy, sell = Exchange.objects.get(slug=buy_slug), Exchange.objects.get(slug=sell_slug)
    # What the detector reports for 1 BTC over these books, fees at each venue's taker rate.
    gross = SIZE * (SELL_VWAP - BUY_VWAP)
    fees = (SIZE * BUY_VWAP * buy.taker_fee_bps + SIZE * SELL_VWAP * sell.taker_fee_bps) / 10_000
    return OpportunityFactory(
        market=Market.objects.get(symbol=MARKET),
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


def venue_record(sim, slug: str, cid: str) -> tuple[int, Decimal]:
    """How many orders the simulated venue holds under our client order id `cid`, and how much
    of them it filled."""
    venue = sim.venues[slug]
    if slug == "kraken":
        orders = [o for o in venue.orders.values() if o["cl_ord_id"] == cl_ord_id(cid)]
        return len(orders), sum((D(o["vol_exec"]) for o in orders), D(0))
    order = venue.orders.get(cid)
    if order is None:
        return 0, D(0)
    filled = {"coinbase": "filled_size", "kucoin": "dealSize"}.get(slug, "executedQty")
    return 1, D(order[filled])
