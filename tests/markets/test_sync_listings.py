"""`manage.py sync_listings` and the Exchange admin's action: listings take the venue's rules."""

from decimal import Decimal
from io import StringIO
from urllib.error import URLError

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR
from markets.models import Listing
from markets.venues import rules as venue_rules
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory
from tests.recordings import rest_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def binance():
    exchange = ExchangeFactory(slug="binance", rest_url="https://api.binance.com")
    btc = ListingFactory(
        exchange=exchange,
        market=MarketFactory(symbol="BTC-USDT"),
        venue_symbol="BTCUSDT",
        tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"),
    )
    eth = ListingFactory(
        exchange=exchange,
        market=MarketFactory(symbol="ETH-BTC"),
        venue_symbol="ETHBTC",
        tick_size=Decimal("0.000001"),
        lot_size=Decimal("0.0001"),
        min_size=Decimal("0.0001"),
        min_notional=Decimal("0.0001"),
    )
    bcc = ListingFactory(
        exchange=exchange, market=MarketFactory(symbol="BCC-BTC"), venue_symbol="BCCBTC"
    )
    return exchange, btc, eth, bcc


@pytest.fixture
def answer(tmp_path):
    path = tmp_path / "exchangeInfo.json"
    path.write_bytes(rest_body("BINANCE.0"))
    return path


def sync(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("sync_listings", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_listing_takes_the_venues_tick_lot_and_minimums(binance, answer):
    _, btc, _, _ = binance

    out, _ = sync("--exchange", "binance", "--file", str(answer))

    btc.refresh_from_db()
    assert (btc.tick_size, btc.lot_size, btc.min_size, btc.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal("10"),
    )
    assert "binance BTCUSDT: tick_size 0.1000000000 -> 0.01000000" in out


def test_each_listing_changed_is_one_audit_event_with_before_and_after(binance, answer):
    _, btc, _, _ = binance

    sync("--exchange", "binance", "--file", str(answer))

    events = AuditEvent.objects.filter(action="listing synced")
    assert events.count() == 2  # BTCUSDT and BCCBTC; ETHBTC already matched
    event = events.get(object_id=str(btc.pk))
    assert event.user is None
    assert event.before["tick_size"] == "0.1000000000"
    assert event.after["tick_size"] == "0.01000000"
    assert set(event.after) == {"tick_size", "lot_size", "min_size", "min_notional"}


def test_a_listing_already_on_the_venues_rules_is_not_touched(binance, answer):
    _, _, eth, _ = binance

    out, _ = sync("--exchange", "binance", "--file", str(answer))

    assert "ETHBTC" not in out
    assert not AuditEvent.objects.filter(object_id=str(eth.pk)).exists()
    assert "binance: 2 changed, 1 unchanged, 0 not in the venue's answer" in out


def test_a_market_the_venue_halts_is_disabled_with_the_reason(binance, answer):
    _, _, _, bcc = binance

    sync("--exchange", "binance", "--file", str(answer))

    bcc.refresh_from_db()
    assert (bcc.enabled, bcc.halted_reason) == (False, "Binance status BREAK")
    assert bcc.trading_rule().tradable is False
    assert bcc.trading_rule().reason == "Binance status BREAK"


def test_a_symbol_not_in_the_answer_is_a_line_and_left_as_is(binance, answer):
    exchange, *_ = binance
    odd = ListingFactory(
        exchange=exchange, market=MarketFactory(symbol="ZZZ-USDT"), venue_symbol="ZZZUSDT"
    )

    out, _ = sync("--exchange", "binance", "--file", str(answer))

    assert "binance ZZZUSDT: not in the answer" in out
    assert Listing.objects.get(pk=odd.pk).tick_size == odd.tick_size


def test_a_bad_file_is_a_clear_error_and_changes_nothing(binance, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("<html>502 Bad Gateway</html>")

    with pytest.raises(CommandError, match="No venue's trading rules could be read"):
        sync("--exchange", "binance", "--file", str(bad))

    assert not AuditEvent.objects.filter(action="listing synced").exists()


def test_an_unreadable_answer_says_which_venue_and_why(binance, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("sync_listings", "--exchange", "binance", "--file", str(bad), stderr=err)

    assert err.getvalue().startswith("binance: unreadable answer: not a Binance exchangeInfo")


def test_a_missing_file_is_a_clear_error(binance, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        sync("--exchange", "binance", "--file", str(tmp_path / "none.json"))


def test_an_unreachable_venue_is_a_line_and_the_others_still_sync(binance, monkeypatch):
    _, btc, _, _ = binance
    ExchangeFactory(slug="kraken", rest_url="https://api.kraken.com")
    bodies = {"https://api.binance.com/api/v3/exchangeInfo": rest_body("BINANCE.0")}

    def http_get(url: str, timeout: float) -> bytes:
        if url not in bodies:
            raise URLError("connection refused")
        return bodies[url]

    monkeypatch.setattr(venue_rules, "http_get", http_get)

    out, err = sync()

    assert "kraken: https://api.kraken.com/0/public/AssetPairs unreachable" in err
    assert "binance: 2 changed" in out
    btc.refresh_from_db()
    assert btc.tick_size == Decimal("0.01")


def test_every_venue_failing_exits_non_zero(binance, monkeypatch):
    monkeypatch.setattr(
        venue_rules, "http_get", lambda url, timeout: (_ for _ in ()).throw(OSError("down"))
    )

    with pytest.raises(CommandError):
        sync()


def test_the_admin_action_syncs_and_audits_as_the_administrator(
    binance, monkeypatch, client, user_with_role
):
    exchange, btc, _, _ = binance
    monkeypatch.setattr(venue_rules, "http_get", lambda url, timeout: rest_body("BINANCE.0"))
    administrator = user_with_role(ADMINISTRATOR)
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)

    response = client.post(
        reverse("admin:markets_exchange_changelist"),
        {"action": "sync_trading_rules", "_selected_action": [exchange.pk]},
        follow=True,
    )

    shown = [str(message) for message in response.context["messages"]]
    assert "binance: 2 changed, 1 unchanged, 0 not in the venue's answer" in shown, shown
    btc.refresh_from_db()
    assert btc.tick_size == Decimal("0.01")
    event = AuditEvent.objects.get(action="listing synced", object_id=str(btc.pk))
    assert event.user == administrator
    exchange.refresh_from_db()
    assert exchange.rules_synced_at is not None


def test_the_daily_schedule_runs_the_sync_task():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="markets-daily-trading-rules")
    assert (task.task, task.enabled, task.crontab.hour) == (
        "markets.tasks.sync_trading_rules",
        True,
        "23",
    )


def test_rules_read_from_the_venue_stamp_when_they_were_read(binance, monkeypatch):
    exchange, _, _, _ = binance
    monkeypatch.setattr(venue_rules, "http_get", lambda url, timeout: rest_body("BINANCE.0"))
    before = timezone.now()

    sync("--exchange", "binance")

    exchange.refresh_from_db()
    assert before <= exchange.rules_synced_at <= timezone.now()


def test_rules_from_a_saved_answer_do_not_count_as_read_from_the_venue(binance, answer):
    exchange, _, _, _ = binance

    sync("--exchange", "binance", "--file", str(answer))

    exchange.refresh_from_db()
    assert exchange.rules_synced_at is None
