"""What the paper execution tests trade against: two venues' books, and a trade taken on them."""

from decimal import Decimal

from django.core.cache import caches

from portfolio.models import Balance
from risk.models import RiskProfile
from tests.factories import publish_test_book
from trading.execution.orders import VenueFor, default_venue
from trading.execution.trades import open_trade, submit_trade
from trading.models import Order, Trade

D = Decimal
BUY_ASKS = [(D("99.5"), D("0.4")), (D(100), D(1))]
BUY_BIDS = [(D("99.5"), D(1))]
SELL_ASKS = [(D(103), D(1))]
# Both legs fill 1 BTC at these: buy 99.8 on buyv, sell 102.15 on sellv.
FULL_SELL_BIDS = [(D("102.5"), D("0.3")), (D(102), D(2))]


def publish_books(sell_bids: list) -> None:
    """buyv's asks 0.4 @ 99.5 and 1 @ 100; sellv's bids `sell_bids`."""
    publish_test_book("buyv", "BTC-USD", bids=BUY_BIDS, asks=BUY_ASKS)
    publish_test_book("sellv", "BTC-USD", bids=sell_bids, asks=SELL_ASKS)


def publish_books_nothing_closes() -> None:
    """sellv's bids fill 0.3 of a 1 BTC trade, and neither its hedge (a sell at 101.49 on
    sellv) nor its unwind (a sell at 99.301 on buyv, whose bids are at 80) finds a bid."""
    publish_books([(D("102.5"), D("0.3")), (D(90), D(5))])
    publish_test_book("buyv", "BTC-USD", bids=[(D(80), D(1))], asks=BUY_ASKS)


def forget_books_and_orders() -> None:
    """The books cache outlives a test's database: drop its books and its paper orders."""
    for venue in ("buyv", "sellv"):
        caches["books"].delete(f"book:{venue}:BTC-USD")
    for cid in Order.objects.values_list("client_order_id", flat=True):
        caches["books"].delete(f"paper-order:{cid}")


def execute(opportunity, venue_for: VenueFor = default_venue) -> Trade:
    """Open and submit a paper trade on `opportunity` under the active profile."""
    profile = RiskProfile.objects.get(is_active=True)
    trade = open_trade(opportunity=opportunity, mode="paper", profile=profile)
    submit_trade(trade=trade, venue_for=venue_for, profile=profile)
    trade.refresh_from_db()
    return trade


def amount(venue: str, asset: str) -> Decimal:
    return Balance.objects.get(account__exchange__slug=venue, asset=asset).amount


def events(trade: Trade) -> list[str]:
    return [e.to_state for e in trade.events.all()]
