"""Issue 14: every fault a venue can give, on each live venue, through a whole cross-venue trade.

Each ends filled, hedged, unwound, or left submitted for recovery with the reason on the trade,
which `recover_trades` then finishes; never with a second order for a leg, never with a leg
recorded as refused that the venue filled, and always with the ledger equal to the venues."""

from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet

from markets.simulator.venue import SimVenue
from markets.venues import orders as venue_orders
from markets.venues.coinbase import orders as coinbase
from tests.trading.execution.live import D, desk, ledger, venue_balances, venue_record
from trading.execution.recovery import recover_trades
from trading.models import Trade
from trading.tasks import execute_opportunity

CLIENT_MS = 1000  # the venue clients' timeout here (400 ms timed out lookups on a loaded CI)
LATE = 2.5  # a late answer comes this long after the request
# Which venue each faulted venue trades against: the fault is on the first's leg.
AGAINST = {"coinbase": "kraken", "kraken": "binance", "binance": "coinbase"}


def short_of_quote(venue: SimVenue, key: str) -> Callable[[], None]:
    """Too little of the market's quote (one code at every venue); undone by a top-up."""
    held = venue.balances[key]
    before, held["USDT"] = held["USDT"], D(5)
    return lambda: held.update(USDT=before)


def lagging_listing_and_refused_duplicates(venue: SimVenue, key: str) -> None:
    """Coinbase's listing lags a new order, and a re-POST of its client id is refused."""
    venue.inject_rest_fault("timeout", delay=LATE)
    venue.listed_after, venue.duplicates = 30.0, "refuse"


def fault(kind: str, **kwargs) -> Callable[[SimVenue, str], None]:
    """One fault on the venue's order endpoint, for the next request."""
    return lambda venue, key: venue.inject_rest_fault(kind, delay=LATE, **kwargs)


# How a trade goes at once (its states after submitted), before recover_trades runs.
FILLED = ["filled", "closed"]  # the fault was the client's to absorb: both legs filled
HEDGED = ["partially_filled", "hedged", "closed"]  # the leg was refused; its hedge filled
LEFT_OPEN = ["partially_filled"]  # neither hedge nor unwind could be had: open, with why
FOR_RECOVERY = []  # the leg's fate unknown: submitted, for recover_trades
INSUFFICIENT = {
    "coinbase": "INSUFFICIENT_FUND",
    "kraken": "InsufficientFunds: EOrder:Insufficient funds",
    "binance": "InsufficientFunds: Account has insufficient balance",
}
# (venue, fault, how the trade goes at once, words on the trade or its orders saying why)
CASES = [
    ("coinbase", "timeout after executing", fault("timeout"), FILLED, ""),
    # The re-POST of the client id after a lookup that finds nothing places it, once.
    ("coinbase", "timeout before executing", fault("lost"), FILLED, ""),
    ("coinbase", "5xx after executing", fault("server_error"), FILLED, ""),
    ("coinbase", "rate limit", fault("rate_limit"), HEDGED, "HTTP 429 rate_limit_exceeded"),
    (
        "coinbase",
        "duplicate client id",
        lagging_listing_and_refused_duplicates,
        FOR_RECOVERY,
        "lookups failed",
    ),
    ("kraken", "timeout after executing", fault("timeout"), FILLED, ""),
    ("kraken", "timeout before executing", fault("lost"), HEDGED, "no such order"),
    ("kraken", "5xx before executing", fault("unavailable"), HEDGED, "503 Service Unavailable"),
    ("kraken", "unreadable answer", fault("unreadable"), FILLED, ""),
    (
        "kraken",
        "rate limit",
        fault("error", message="EAPI:Rate limit exceeded"),
        HEDGED,
        "EAPI:Rate limit exceeded",
    ),
    (
        "kraken",
        "nonce error",
        fault("error", message="EAPI:Invalid nonce"),
        HEDGED,
        "EAPI:Invalid nonce",
    ),
    ("binance", "timeout after executing", fault("timeout"), FILLED, ""),
    ("binance", "timeout before executing", fault("lost"), HEDGED, "no such order"),
    ("binance", "rate limit", fault("rate_limit"), HEDGED, "Too many requests"),
    (
        "binance",
        "timestamp outside the window",
        fault(
            "error", code=-1021, message="Timestamp for this request is outside of the recvWindow."
        ),
        HEDGED,
        "outside of the recvWindow",
    ),
] + [
    (slug, "insufficient funds", short_of_quote, LEFT_OPEN, f"hedge on {slug} refused: {words}")
    for slug, words in INSUFFICIENT.items()
]


@pytest.fixture(autouse=True)
def quick_clients(monkeypatch, settings):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    monkeypatch.setattr(venue_orders, "TIMEOUT_MS", CLIENT_MS)
    monkeypatch.setattr(coinbase, "PAUSE", 0.05)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("slug", "name", "inject", "at_once", "reason"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_a_fault_on_a_leg_ends_in_a_known_state_with_one_order_per_leg_and_exact_books(
    sim, loop, slug, name, inject, at_once, reason
):
    opportunity, keys = desk(sim, loop, slug, AGAINST[slug])
    venue = sim.venues[slug]

    undo = inject(venue, keys[slug])

    trade = Trade.objects.get(pk=execute_opportunity(opportunity.pk, mode="live"))
    went = list(trade.events.order_by("pk").values_list("to_state", flat=True))
    said = " | ".join([trade.failure_reason, *trade.orders.values_list("error", flat=True)])
    # The fault passes (a person tops the account up, the listing catches up); recovery runs.
    venue.rest_faults.clear()
    if undo is not None:
        undo()
    if slug == "coinbase":
        venue.listed_after = 0.0
    recover_trades(older_than_s=0)
    trade.refresh_from_db()

    assert went == ["submitted", *at_once]
    assert reason in said
    assert (trade.state, trade.failure_reason) == ("closed", "")
    for order in trade.orders.select_related("exchange"):
        held, filled = venue_record(sim, order.exchange.slug, order.client_order_id)
        assert held <= 1, order.client_order_id  # never a second order for one leg
        assert order.filled_amount == filled, order.client_order_id
        if order.state == "rejected":
            assert held == 0, order.client_order_id  # never refused while the venue has it
    for each in (slug, AGAINST[slug]):
        balances, entries = ledger(each)
        assert balances == entries == venue_balances(sim, each, keys[each]), each
