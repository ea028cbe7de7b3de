"""Issue 16, item 4: order acknowledgement latency per venue.

Every order sent is timed, on its row and in `arb_order_ack_seconds`; a venue whose p99 over its
last orders passes the live profile's limit pauses automatic execution there (recorded, alerted,
told to the pages) and resumes once its newer orders bring the p99 back within the limit."""

import re
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from arbsite.roles import TRADER
from markets import notices
from portfolio.models import Mode
from risk import checks
from risk.models import RiskProfile, VenuePause
from tests.factories import ExchangeFactory, OpportunityFactory, RiskProfileFactory, timed_orders
from tests.trading.execution.live import cross, desk
from trading.execution.desk import desk_state, execution_refusals, trip_if, update_ack_pauses
from trading.models import Opportunity, Order, Trade
from trading.tasks import execute_opportunity

LIMIT_MS = 2000
SLOW_S = 3.0  # past the limit; within the clients' 5 s timeout, fast orders take ~0.3-0.6 s here


@pytest.fixture
def venues(db, alerts_sent):
    """Binance and Kraken under an active live profile with a 2 s limit over 3 orders."""
    binance_row, kraken_row = ExchangeFactory(slug="binance"), ExchangeFactory(slug="kraken")
    RiskProfileFactory(name="live", mode=Mode.LIVE, max_ack_p99_ms=LIMIT_MS, ack_window=3)
    return binance_row, kraken_row


@pytest.mark.django_db(transaction=True)
def test_a_venue_past_the_limit_is_paused_once_recorded_alerted_and_told_to_the_pages(
    venues, alerts_sent, heard
):
    binance_row, kraken_row = venues
    timed_orders(binance_row, [40.0, 2500.0, 40.0])
    timed_orders(kraken_row, [40.0, 900.0])
    health = heard(notices.HEALTH)

    update_ack_pauses(Mode.LIVE)
    update_ack_pauses(Mode.LIVE)  # still slow: the same pause, not a second one

    pause = VenuePause.objects.get()
    assert (pause.exchange, pause.mode, pause.p99_ms, pause.limit_ms, pause.orders) == (
        binance_row,
        Mode.LIVE,
        2500.0,
        LIMIT_MS,
        3,
    )
    assert pause.resumed_at is None
    assert desk_state(Mode.LIVE).paused_venues == {"binance"}
    assert desk_state(Mode.PAPER).paused_venues == frozenset()
    assert [title for title, _ in alerts_sent] == ["Arbitrage desk: limit hit"]
    assert "binance" in alerts_sent[0][1] and checks.ACK_SLOW in alerts_sent[0][1]
    assert [n["kind"] for n in health.notices()] == [notices.HEALTH]


@pytest.mark.django_db(transaction=True)
def test_a_paused_venue_resumes_once_newer_orders_bring_its_p99_within_the_limit(venues, heard):
    binance_row, _ = venues
    timed_orders(binance_row, [40.0, 2500.0, 40.0])
    update_ack_pauses(Mode.LIVE)
    health = heard(notices.HEALTH)

    timed_orders(binance_row, [45.0, 50.0], start=timezone.now() - timedelta(minutes=1))
    update_ack_pauses(Mode.LIVE)  # the window: 40, 45, 50

    pause = VenuePause.objects.get()  # the incident stays on record, closed
    assert pause.resumed_at is not None and pause.resumed_p99_ms == 50.0
    assert desk_state(Mode.LIVE).paused_venues == frozenset()
    assert [n["kind"] for n in health.notices()] == [notices.HEALTH]


def paused_for(seconds: float) -> VenuePause:
    pause = VenuePause.objects.get(resumed_at__isnull=True)
    pause.paused_at = timezone.now() - timedelta(seconds=seconds)
    pause.save(update_fields=["paused_at"])
    return pause


@pytest.mark.django_db(transaction=True)
def test_a_paused_venue_with_no_new_orders_is_retried_after_the_profiles_time(venues):
    binance_row, _ = venues  # the profile retries after its default 300 s
    timed_orders(binance_row, [40.0, 2500.0, 40.0], start=timezone.now() - timedelta(minutes=9))
    update_ack_pauses(Mode.LIVE)
    paused_for(299)
    assert update_ack_pauses(Mode.LIVE) != []  # not yet

    paused_for(300)

    assert update_ack_pauses(Mode.LIVE) == []
    pause = VenuePause.objects.get()
    assert (pause.retried, pause.resumed_p99_ms) == (True, 2500.0)
    assert update_ack_pauses(Mode.LIVE) == []  # the old slow orders do not pause it again
    assert desk_state(Mode.LIVE).paused_venues == frozenset()


@pytest.mark.django_db(transaction=True)
def test_a_retried_venue_is_judged_on_its_orders_after_the_retry(venues):
    binance_row, _ = venues
    timed_orders(binance_row, [2500.0], start=timezone.now() - timedelta(minutes=9))
    update_ack_pauses(Mode.LIVE)
    paused_for(600)
    update_ack_pauses(Mode.LIVE)  # retried

    timed_orders(binance_row, [40.0], start=timezone.now())
    assert update_ack_pauses(Mode.LIVE) == []  # its window: 40 alone
    timed_orders(binance_row, [2600.0], start=timezone.now() + timedelta(seconds=1))
    [again] = update_ack_pauses(Mode.LIVE)  # still slow: paused again at once

    assert (again.p99_ms, again.orders, again.retried) == (2600.0, 2, False)
    assert VenuePause.objects.count() == 2


def test_a_retry_time_of_zero_keeps_the_venue_paused_until_its_figures_recover(venues):
    binance_row, _ = venues
    RiskProfile.objects.filter(mode=Mode.LIVE).update(ack_retry_after_s=0)
    timed_orders(binance_row, [2500.0])
    update_ack_pauses(Mode.LIVE)
    paused_for(86_400)

    assert len(update_ack_pauses(Mode.LIVE)) == 1


def test_switching_the_limit_off_resumes_every_paused_venue(venues):
    binance_row, _ = venues
    timed_orders(binance_row, [2500.0])
    update_ack_pauses(Mode.LIVE)
    RiskProfile.objects.filter(mode=Mode.LIVE).update(max_ack_p99_ms=0)

    assert update_ack_pauses(Mode.LIVE) == []
    assert VenuePause.objects.get().resumed_at is not None


def test_the_engines_periodic_check_pauses_a_slow_venue_and_its_ticks_refuse_it(venues):
    from risk.selectors import load_limits
    from trading.execution.desk import candidate_of, engine_refusals

    binance_row, kraken_row = venues
    timed_orders(binance_row, [2500.0])
    opportunity = OpportunityFactory(buy_exchange=kraken_row, sell_exchange=binance_row)

    trip_if(mode=Mode.LIVE)

    refusals = engine_refusals(
        candidate_of(opportunity), limits=load_limits(Mode.LIVE), state=desk_state(Mode.LIVE)
    )
    assert checks.ACK_SLOW in refusals


# On the simulated venues, live: Binance slowed by the simulator's `slow` fault.


@pytest.fixture
def live(settings, sim, loop):
    """Binance (buy) and Kraken (sell) live at their simulators; the live profile's limit 2 s
    over each venue's last 2 orders."""
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    opportunity, _ = desk(sim, loop, "binance", "kraken")
    RiskProfile.objects.filter(mode=Mode.LIVE).update(max_ack_p99_ms=LIMIT_MS, ack_window=2)
    return opportunity


def ack_ms(trade_id: int) -> dict[str, float]:
    """Each order's acknowledgement time on the trade, by venue."""
    orders = Order.objects.filter(trade_id=trade_id).select_related("exchange")
    return {o.exchange.slug: o.ack_ms for o in orders}


@pytest.mark.django_db(transaction=True)
def test_every_order_sent_keeps_how_long_its_venue_took_and_the_histogram_observes_it(
    client, settings, live
):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    def scraped() -> dict[str, float]:
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").content
        found = re.findall(
            r'^arb_order_ack_seconds_(count|sum)\{mode="live",venue="(\w+)"\} (\S+)$',
            text.decode(),
            re.MULTILINE,
        )
        return {f"{venue} {kind}": float(value) for kind, venue, value in found}

    before = scraped()
    trade_id = execute_opportunity(live.pk, mode="live")
    after = scraped()

    took = ack_ms(trade_id)
    assert set(took) == {"binance", "kraken"} and all(ms > 0 for ms in took.values())
    for venue, ms in took.items():
        assert after[f"{venue} count"] == before.get(f"{venue} count", 0) + 1
        grew = after[f"{venue} sum"] - before.get(f"{venue} sum", 0)
        assert grew == pytest.approx(ms / 1000)


@pytest.mark.django_db(transaction=True)
def test_a_slow_venue_pauses_automatic_execution_there_and_resumes_when_fast_again(
    sim, loop, live, user_with_role
):
    sim.venues["binance"].inject_rest_fault("slow", delay=SLOW_S)
    trader = user_with_role(TRADER)

    first = execute_opportunity(live.pk, mode="live")  # not paused yet: it goes
    took = ack_ms(first)
    back = cross(sim, loop, "kraken", "binance")
    refused = execute_opportunity(back.pk, mode="live")  # automatic, as the engine's

    # The slow answer came at least the injected delay late; the other venue's well before it.
    assert took["binance"] >= SLOW_S * 1000 > took["kraken"]
    assert Trade.objects.get(pk=first).state == Trade.State.CLOSED
    assert refused is None
    assert Opportunity.objects.get(pk=back.pk).refusals == {checks.ACK_SLOW: 1}
    pause = VenuePause.objects.get()
    assert (pause.exchange.slug, pause.p99_ms, pause.limit_ms) == (
        "binance",
        took["binance"],
        LIMIT_MS,
    )

    # A Trader may still execute by hand; each fast order on Binance joins its window of 2.
    by_hand = execute_opportunity(back.pk, mode="live", user_id=trader.pk)
    assert Trade.objects.get(pk=by_hand).state == Trade.State.CLOSED
    assert update_ack_pauses(Mode.LIVE) == [pause]  # its window: this fast one, the slow one
    again = cross(sim, loop, "binance", "kraken")
    execute_opportunity(again.pk, mode="live", user_id=trader.pk)
    next_one = cross(sim, loop, "kraken", "binance")

    assert execution_refusals(next_one, mode="live", automatic=True) == []
    pause.refresh_from_db()
    assert pause.resumed_at is not None and pause.resumed_p99_ms < LIMIT_MS
