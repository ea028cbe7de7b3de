"""Issue 16: each live account's holdings at its venue against its ledger, over loopback against
the simulated venues. A drift trips the kill switch naming the asset, an Administrator's
adjustment accounts for it (audited), external orders are reported, a venue that does not answer
is a failed reconciliation, and automatic live execution waits for fresh ones."""

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse
from django.utils import timezone

from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR, VIEWER
from markets.venues import orders as venue_orders
from portfolio.models import Account, LedgerEntry, Reconciliation
from portfolio.reconciliation import drifts_of
from risk.models import KillSwitch, RiskProfile
from tests.trading.execution.live import D, desk, ledger, venue_balances, venue_record
from trading.execution import trades
from trading.execution.desk import NOT_RECONCILED, execution_refusals
from trading.execution.orders import default_venue
from trading.models import Order
from trading.reconciliation import reconcile, reconcile_at_start
from trading.tasks import execute_opportunity

pytestmark = pytest.mark.django_db(transaction=True)
AGAINST = {"coinbase": "kraken", "kraken": "binance", "binance": "coinbase"}


@pytest.fixture(autouse=True)
def keys_and_quick_clients(settings, monkeypatch):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    monkeypatch.setattr(venue_orders, "TIMEOUT_MS", 500)


def account(slug: str) -> Account:
    return Account.objects.select_related("exchange").get(exchange__slug=slug, mode="live")


@pytest.mark.parametrize("slug", list(AGAINST))
def test_a_balance_moved_behind_the_desks_back_trips_the_kill_switch_naming_the_asset(
    sim, loop, slug, alerts_sent
):
    _, keys = desk(sim, loop, slug, AGAINST[slug])
    entries = LedgerEntry.objects.count()
    sim.venues[slug].balances[keys[slug]]["USDT"] += D("12.4")  # a transfer in, by hand

    result = reconcile(account(slug))

    switch = KillSwitch.current()
    assert switch.is_on and switch.automatic
    assert (
        switch.reason
        == f"reconciliation: {slug} USDT: venue 100,012.4, ledger 100,000, drift +12.4"
    )
    assert {d.asset: d.drift for d in drifts_of(result)} == {"BTC": 0, "USDT": D("12.4")}
    assert [title for title, _ in alerts_sent] == ["Arbitrage desk: kill switch"]
    assert LedgerEntry.objects.count() == entries  # nothing booked that the venue reported


def test_venues_that_match_the_ledger_leave_the_desk_alone(sim, loop):
    desk(sim, loop, "kraken", "binance")

    results = [reconcile(account(slug)) for slug in ("kraken", "binance")]

    assert not KillSwitch.current().is_on
    assert [[d.drift for d in drifts_of(r)] for r in results] == [[0, 0], [0, 0]]
    assert all(r.error == "" and r.external_orders == [] for r in results)


def test_a_drift_within_the_profiles_tolerance_does_not_trip(sim, loop):
    _, keys = desk(sim, loop, "coinbase", "kraken")
    RiskProfile.objects.filter(mode="live").update(drift_tolerances={"USDT": "0.01"})
    sim.venues["coinbase"].balances[keys["coinbase"]]["USDT"] -= D("0.005")

    reconcile(account("coinbase"))

    assert not KillSwitch.current().is_on


def test_an_administrators_adjustment_accounts_for_the_drift_and_is_audited(
    sim, loop, client, user_with_role
):
    _, keys = desk(sim, loop, "binance", "coinbase")
    sim.venues["binance"].balances[keys["binance"]]["BTC"] -= D("0.25")  # withdrawn by hand
    reconcile(account("binance"))
    administrator = user_with_role(ADMINISTRATOR)
    client.force_login(administrator)

    response = client.post(
        reverse("portfolio_adjust"),
        {
            "account": account("binance").pk,
            "asset": "BTC",
            "amount": "-0.25",
            "reason": "0.25 BTC withdrawn to cold storage by hand",
        },
    )

    assert response.status_code == 302
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert (entry.asset, entry.amount, entry.note) == (
        "BTC",
        D("-0.25"),
        "0.25 BTC withdrawn to cold storage by hand",
    )
    last = Reconciliation.objects.filter(account=account("binance")).first()
    assert [d.drift for d in drifts_of(last)] == [0, 0]  # reconciled again at once
    event = AuditEvent.objects.get(action="ledger adjusted")
    assert event.user == administrator
    assert event.after == {
        "asset": "BTC",
        "amount": "-0.25",
        "reason": "0.25 BTC withdrawn to cold storage by hand",
    }


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"asset": "BTC", "amount": "0", "reason": "x"}, "An adjustment of zero changes nothing."),
        ({"asset": "btc", "amount": "1", "reason": "x"}, "An asset code is capitals and digits"),
        ({"asset": "BTC", "amount": "1", "reason": ""}, "This field is required."),
        ({"asset": "BTC", "amount": "-5", "reason": "x"}, "The balance cannot go below zero"),
    ],
)
def test_a_bad_adjustment_is_refused_with_why_and_books_nothing(
    sim, loop, client, user_with_role, form, error
):
    desk(sim, loop, "kraken", "binance")
    client.force_login(user_with_role(ADMINISTRATOR))

    response = client.post(reverse("portfolio_adjust"), {"account": account("kraken").pk, **form})

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


def test_only_an_administrator_may_adjust_a_ledger(sim, loop, client, user_with_role):
    desk(sim, loop, "kraken", "binance")
    client.force_login(user_with_role(VIEWER))

    response = client.post(
        reverse("portfolio_adjust"),
        {"account": account("kraken").pk, "asset": "BTC", "amount": "1", "reason": "x"},
    )

    assert response.status_code == 403
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


def test_an_order_resting_at_the_venue_that_no_trade_sent_is_reported_and_alerted(
    sim, loop, alerts_sent
):
    _, keys = desk(sim, loop, "kraken", "binance")
    txid = sim.venues["kraken"].hold_order(
        keys["kraken"], "BTC/USDT", side="sell", price=D(150), amount=D("0.5"), cid=""
    )

    result = reconcile(account("kraken"))

    assert result.external_orders == [
        {
            "id": txid,
            "client_order_id": "",
            "symbol": "XBTUSDT",
            "side": "sell",
            "amount": "0.50000000",
            "price": "150.00000000",
        }
    ]
    assert alerts_sent == [
        (
            "Arbitrage desk: external order",
            f"kraken holds an order no trade of the desk's sent: sell 0.50000000 XBTUSDT at "
            f"150.00000000 (id {txid})",
        )
    ]


@pytest.mark.parametrize(
    ("slug", "inject", "words"),
    [
        (
            "kraken",
            lambda v: v.inject_rest_fault(
                "error", route="/0/private/Balance", message="EService:Unavailable"
            ),
            "EService:Unavailable",
        ),
        (
            "binance",
            lambda v: v.inject_rest_fault("timeout", route="GET /api/v3/account", delay=1.0),
            "RequestTimeout",
        ),
        (
            "coinbase",
            lambda v: v.inject_rest_fault("server_error", route="GET /api/v3/brokerage/accounts"),
            "HTTP 503",
        ),
    ],
)
def test_a_venue_that_answers_balances_slowly_or_with_an_error_is_a_failed_reconciliation(
    sim, loop, slug, inject, words
):
    desk(sim, loop, slug, AGAINST[slug])
    inject(sim.venues[slug])

    result = reconcile(account(slug))

    assert words in result.error
    assert result.lines == []
    assert not KillSwitch.current().is_on
    profile = RiskProfile.objects.get(mode="live")
    assert profile.not_reconciled([account(slug).exchange]) == [
        f"{slug}: last reconciliation failed: {result.error}"
    ]


def test_no_comparison_while_an_order_of_the_desks_is_in_flight_there(sim, loop):
    opportunity, _ = desk(sim, loop, "coinbase", "kraken")
    trade = execute_opportunity(opportunity.pk, mode="live")
    Order.objects.filter(trade_id=trade, side="buy").update(state="submitted")
    before = Reconciliation.objects.count()

    assert reconcile(account("coinbase")) is None
    assert Reconciliation.objects.count() == before


def test_automatic_live_execution_waits_for_fresh_reconciliations(sim, loop, settings):
    opportunity, _ = desk(sim, loop, "coinbase", "kraken")
    stale = timezone.now() - timezone.timedelta(seconds=settings.RECONCILIATION_MAX_AGE_S + 1)
    Reconciliation.objects.update(at=stale)

    refused = execution_refusals(opportunity, mode="live", automatic=True)
    by_hand = execution_refusals(opportunity, mode="live", automatic=False)

    assert NOT_RECONCILED in refused
    assert NOT_RECONCILED not in by_hand
    assert execute_opportunity(opportunity.pk, mode="live") is None


def test_a_live_profile_cannot_switch_automatic_execution_on_while_a_venue_is_unreconciled(
    sim, loop
):
    desk(sim, loop, "coinbase", "kraken")
    profile = RiskProfile.objects.get(mode="live")
    RiskProfile.objects.filter(pk=profile.pk).update(auto_execute=False)
    Reconciliation.objects.filter(account__exchange__slug="kraken").delete()
    profile.refresh_from_db()
    profile.auto_execute = True

    with pytest.raises(Exception) as refused:
        profile.clean_allowed(list(profile.allowed_exchanges.all()), [1])

    assert "Automatic live execution cannot start: kraken: never reconciled." in str(refused.value)


class DiesAfterSending:
    """A venue whose worker is killed once the order is sent, before the answer is recorded."""

    def __init__(self, venue) -> None:
        self.venue = venue

    async def place_ioc(self, request):
        await self.venue.place_ioc(request)
        raise SystemExit("worker killed")


def test_legs_a_killed_worker_sent_but_never_recorded_are_finished_before_anything_trades(
    sim, loop
):
    opportunity, keys = desk(sim, loop, "kraken", "binance")
    profile = RiskProfile.objects.get(mode="live")
    trade = trades.open_trade(opportunity=opportunity, mode="live", profile=profile, user=None)
    with pytest.raises(SystemExit):
        trades.submit_trade(
            trade=trade,
            venue_for=lambda exchange, mode, p: DiesAfterSending(default_venue(exchange, mode, p)),
            profile=profile,
        )
    assert set(trade.orders.values_list("state", flat=True)) == {"submitted"}

    results = reconcile_at_start(alone=True)

    trade.refresh_from_db()
    assert (trade.state, trade.realised_net_profit) == ("closed", opportunity.net_profit)
    for order in trade.orders.select_related("exchange"):  # each at most once at its venue
        held, filled = venue_record(sim, order.exchange.slug, order.client_order_id)
        assert (held, filled) == ((1, order.amount) if order.state == "filled" else (0, 0))
    assert {r.account.exchange.slug for r in results} == {"kraken", "binance"}
    assert all(d.drift == 0 for r in results for d in drifts_of(r))
    for slug in ("kraken", "binance"):
        balances, entries = ledger(slug)
        assert balances == entries == venue_balances(sim, slug, keys[slug])
