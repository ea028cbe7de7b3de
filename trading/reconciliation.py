"""Reconciliation with the venues: what each live account holds at its venue against its ledger,
and the orders resting there against the desk's. A drift past the risk profile's tolerance trips
the kill switch; an order no trade of the desk's owns is an external order, shown and alerted.
Nothing here writes to the ledger: a drift is accounted for by an Administrator's adjustment."""

import logging

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max

from markets import notices
from markets.models import Exchange, ExchangeCredential
from markets.venues.live import NotTradable, live_venue
from markets.venues.orders import OpenOrder, VenueError
from portfolio.models import Account, Mode, Reconciliation
from portfolio.reconciliation import beyond, booked_as, compare, drift_words, drifts_of
from risk import alerts
from risk.models import RiskProfile
from risk.services import trip_kill_switch
from trading.execution.recovery import recover_trades
from trading.models import Order

log = logging.getLogger(__name__)

EXTERNAL_ORDER = "external order"
FAILED = "reconciliation failed"
IN_FLIGHT = [Order.State.NEW, Order.State.SUBMITTED]


def live_accounts() -> list[Account]:
    """The live accounts whose venue the desk holds a key for."""
    with_keys = ExchangeCredential.objects.values("exchange")
    accounts = Account.objects.filter(mode=Mode.LIVE, exchange__in=with_keys)
    return list(accounts.select_related("exchange").order_by("exchange__slug"))


def reconcile(account: Account) -> Reconciliation | None:
    """Ask the venue what `account` holds and which orders rest there; compare, keep, judge.

    None while an order of the desk's is in flight there, or the ledger moved during the asking:
    the venue and the ledger may then each hold a fill the other does not yet, so the next
    round compares them."""
    exchange = account.exchange
    if _in_flight(exchange):
        return None
    mark = _last_entry(account)
    try:
        venue = live_venue(exchange)
        held = async_to_sync(venue.fetch_balances)()
        resting = async_to_sync(venue.fetch_open_orders)()
    except (NotTradable, VenueError, ImproperlyConfigured, ValueError) as exc:
        result = Reconciliation.objects.create(account=account, error=str(exc)[:200])
        log.warning("%s: reconciliation failed: %s", exchange.slug, result.error)
        alerts.notify(FAILED, exchange.slug, f"{exchange.slug}: reconciliation failed: {exc}")
        notices.publish(notices.PORTFOLIO)
        return result
    if _in_flight(exchange) or _last_entry(account) != mark:
        return None
    ledger = dict(account.balances.values_list("asset", "amount"))
    result = Reconciliation.objects.create(
        account=account,
        lines=[d.line() for d in compare(held, ledger, booked_as(exchange))],
        # The desk's IOC orders never rest, and none is in flight: any resting order is not ours.
        external_orders=[_shown(o) for o in resting],
    )
    judge(result)
    notices.publish(notices.PORTFOLIO)
    return result


def judge(result: Reconciliation) -> list[str]:
    """Trip the kill switch on every drift past the live profile's tolerance, and alert each
    external order; return the drifts, in words."""
    slug = result.account.exchange.slug
    profile = RiskProfile.objects.active(Mode.LIVE) or RiskProfile(mode=Mode.LIVE)
    drifted = [drift_words(slug, d) for d in beyond(drifts_of(result), profile.drift_tolerance)]
    if drifted:
        trip_kill_switch(reason=f"reconciliation: {'; '.join(drifted)}"[:200])
    for order in result.external_orders:
        alerts.notify(
            EXTERNAL_ORDER,
            f"{slug}:{order['id']}",
            f"{slug} holds an order no trade of the desk's sent: {order['side']} "
            f"{order['amount']} {order['symbol']} at {order['price']} (id {order['id']})",
        )
    return drifted


def reconcile_all() -> list[Reconciliation]:
    """One round over every live account; the accounts skipped this round are not in it."""
    return [r for r in (reconcile(a) for a in live_accounts()) if r is not None]


def reconcile_at_start(*, alone: bool) -> list[Reconciliation]:
    """Before this process trades live: finish the live trades a stopped process left (every
    unfinished one when no other process executes, `alone`; else those stuck past any task's
    time limit), then reconcile every live account."""
    recover_trades(**({"older_than_s": 0} if alone else {}))
    return reconcile_all()


def _in_flight(exchange: Exchange) -> bool:
    return Order.objects.filter(
        exchange=exchange, trade__mode=Mode.LIVE, state__in=IN_FLIGHT
    ).exists()


def _last_entry(account: Account) -> int | None:
    return account.entries.aggregate(last=Max("id"))["last"]


def _shown(order: OpenOrder) -> dict[str, str]:
    return {
        "id": order.venue_order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.venue_symbol,
        "side": order.side,
        "amount": f"{order.amount:f}",
        "price": f"{order.price:f}",
    }
