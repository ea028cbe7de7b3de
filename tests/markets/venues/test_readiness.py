"""Live readiness (`live_check` and the Exchange admin's action) against the simulated venues:
each check on a demo key, a key that can withdraw, a skewed clock, a wrong key, stale fees."""

import asyncio
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from arbsite.models import AuditEvent
from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, VIEWER
from markets.models import Exchange, ExchangeCredential
from markets.simulator.demo import demo_funding, demo_key, demo_passphrase
from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing, VenueProfile
from markets.venues.orders import KeyRights, VenueError
from markets.venues.readiness import (
    FAIL,
    FEES_MAX_AGE,
    INFO,
    PASS,
    WARN,
    Override,
    clock_check,
    freshness,
    readiness,
    rights_check,
)
from tests.factories import ExchangeFactory, ListingFactory, MarketFactory

D = Decimal
SYMBOLS = {"coinbase": "BTC-USD", "kraken": "BTC/USD", "binance": "BTCUSDT", "kucoin": "BTC-USDT"}
NAMES = {"coinbase": "Coinbase", "kraken": "Kraken", "binance": "Binance", "kucoin": "KuCoin"}
CHECKS = [
    "credentials decrypt",
    "key authenticates",
    "key rights",
    "clock skew",
    "balances fetched",
    "fees fresh",
    "trading rules fresh",
]
# What a wrong key gets, in each venue's words.
REFUSED = {
    "binance": "AuthenticationError: Invalid API-key, IP, or permissions for action.",
    "coinbase": "HTTP 401 UNAUTHORIZED: Unauthorized: unknown key or algorithm",
    "kraken": "AuthenticationError: EAPI:Invalid key",
    "kucoin": "AuthenticationError: KC-API-KEY not exists (400003)",
}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim(loop):
    listings = {slug: SimListing(symbol, D("0.1"), D("0.0001")) for slug, symbol in SYMBOLS.items()}
    markets = {"BTC-USD": MarketSpec(mid=D(100), size=D(1), listings=listings)}
    still = VenueProfile(3600.0, 0.0, 0.0, 0.2, 10, 25.0)
    simulator = VenueSimulator(markets=markets, profiles=dict.fromkeys(SYMBOLS, still))
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    for slug, venue in simulator.venues.items():
        venue.open_account(*demo_key(slug), demo_funding(slug), demo_passphrase(slug))
    yield simulator
    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


@pytest.fixture
def venues(sim, settings) -> dict[str, Exchange]:
    """The three exchanges at their simulated venues with the demo keys, fees and rules fresh."""
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()
    market = MarketFactory(symbol="BTC-USD")
    synced = timezone.now() - timedelta(hours=1)
    rows = {}
    for slug, symbol in SYMBOLS.items():
        exchange = ExchangeFactory(
            slug=slug,
            name=NAMES[slug],
            rest_url=sim.urls[f"{slug}_rest"],
            taker_fee_bps=10,
            maker_fee_bps=5,
            fees_synced_at=synced,
            rules_synced_at=synced,
        )
        ListingFactory(exchange=exchange, market=market, venue_symbol=symbol)
        credential = ExchangeCredential(exchange=exchange)
        api_key, secret = demo_key(slug)
        credential.set_keys(api_key=api_key, secret=secret, passphrase=demo_passphrase(slug))
        credential.save()
        rows[slug] = exchange
    return rows


def by_name(slug: str) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in readiness(Exchange.objects.get(slug=slug))}


def live_check(*args: str) -> tuple[list[str], str]:
    """The command's lines, and its error ("" when it exits 0)."""
    out = StringIO()
    try:
        call_command("live_check", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue().splitlines(), str(exc)
    return out.getvalue().splitlines(), ""


def override(slug: str, reason: str = "the treasury sweeps profits out weekly") -> None:
    credential = ExchangeCredential.objects.get(exchange__slug=slug)
    credential.override_withdrawals(reason, by="alice")
    credential.save()


@pytest.mark.parametrize("slug", list(SYMBOLS))
def test_a_demo_key_passes_every_check_with_its_figures(venues, slug):
    checks = by_name(slug)

    assert list(checks) == CHECKS
    rights = INFO if slug == "kraken" else PASS
    assert [status for status, _ in checks.values()] == [PASS, PASS, rights, *[PASS] * 4]
    quote = demo_funding(slug).keys() - {"BTC", "ETH"}
    assert checks["balances fetched"][1] == f"BTC 2, ETH 30, {quote.pop()} 100000"
    assert checks["clock skew"][1].endswith(" s against the venue's server time (limit ±1 s)")
    assert checks["fees fresh"][1] == (
        "taker 10.000, maker 5.000 bps, read from the venue 1\xa0hour ago (limit 1\xa0day)"
    )
    assert checks["trading rules fresh"][1] == "read from the venue 1\xa0hour ago (limit 2\xa0days)"


@pytest.mark.parametrize(
    ("slug", "stated"),
    [
        (
            "binance",
            "enableSpotAndMarginTrading=true, enableWithdrawals=false, "
            "enableInternalTransfer=false, permitsUniversalTransfer=false",
        ),
        ("coinbase", "can_view=true, can_trade=true, can_transfer=false"),
    ],
)
def test_the_key_rights_line_quotes_the_venues_own_flags(venues, slug, stated):
    assert by_name(slug)["key rights"] == (PASS, f"trades, cannot withdraw or transfer ({stated})")


def test_kraken_says_what_it_cannot_tell(venues):
    assert by_name("kraken")["key rights"] == (
        INFO,
        "Kraken does not report a key's permissions; check them on its site: trading on, "
        "withdrawal and transfer of funds off",
    )


def test_live_check_passes_every_venue_with_a_key_and_exits_zero(venues):
    lines, error = live_check()

    assert error == ""
    assert len(lines) == len(SYMBOLS) * len(CHECKS)
    assert [line.split()[:2] for line in lines[:2]] == [["binance", PASS], ["binance", PASS]]
    assert not [line for line in lines if f" {FAIL} " in line]


@pytest.mark.parametrize(
    ("slug", "grant", "can"),
    [
        ("binance", lambda sim: sim.venues["binance"].can_withdraw, "withdraw and transfer"),
        ("coinbase", lambda sim: sim.venues["coinbase"].can_transfer, "withdraw and transfer"),
        ("kucoin", lambda sim: sim.venues["kucoin"].can_withdraw, "withdraw and transfer"),
    ],
)
def test_a_key_that_can_withdraw_fails_live_check(venues, sim, slug, grant, can):
    grant(sim).add(demo_key(slug)[0])

    lines, error = live_check("--exchange", slug)

    assert error == "1 check failed."
    rights = next(line for line in lines if " key rights: " in line)
    assert rights.split()[:2] == [slug, FAIL]
    assert f"the key can {can} funds (" in rights
    assert rights.endswith(
        ": refused. Remove the right at the venue, or an Administrator writes why it must stay "
        "on the credential"
    )


@pytest.mark.parametrize("slug", ["binance", "coinbase", "kucoin"])
def test_a_written_override_turns_the_refusal_into_a_warning_that_quotes_it(venues, sim, slug):
    venue = sim.venues[slug]
    (venue.can_transfer if slug == "coinbase" else venue.can_withdraw).add(demo_key(slug)[0])
    override(slug)

    lines, error = live_check("--exchange", slug)

    assert error == ""
    rights = next(line for line in lines if " key rights: " in line)
    assert rights.split()[:2] == [slug, WARN]
    assert "; overridden by alice at " in rights
    assert rights.endswith(': "the treasury sweeps profits out weekly"')


@pytest.mark.parametrize("slug", list(SYMBOLS))
def test_a_ten_minute_clock_skew_fails(venues, sim, slug):
    sim.venues[slug].clock_skew = -600.0

    status, detail = by_name(slug)["clock skew"]

    assert status == FAIL
    skew = float(detail.split()[0])
    assert -601 < skew < -599
    assert detail.endswith(
        "s against the venue's server time (limit ±1 s): set this machine's clock (NTP)"
    )


def test_a_skewed_clock_makes_live_check_exit_non_zero(venues, sim):
    sim.venues["kraken"].clock_skew = 600.0

    lines, error = live_check("--exchange", "kraken")

    assert error == "1 check failed."
    assert next(line for line in lines if "clock skew" in line).split()[:2] == ["kraken", FAIL]


@pytest.mark.parametrize("slug", list(SYMBOLS))
def test_a_wrong_key_fails_in_the_venues_words(venues, sim, slug):
    sim.venues[slug].keys.clear()

    checks = by_name(slug)

    assert checks["credentials decrypt"][0] == PASS
    status, detail = checks["key authenticates"]
    assert (status, detail.startswith("a signed call was refused: ")) == (FAIL, True)
    assert detail.endswith(REFUSED[slug])
    assert checks["balances fetched"][0] == FAIL
    assert checks["balances fetched"][1].endswith(REFUSED[slug])
    assert checks["clock skew"][0] == PASS  # the venue's time is public
    if slug != "kraken":
        assert checks["key rights"][0] == FAIL
        assert checks["key rights"][1].endswith(REFUSED[slug])


@pytest.mark.parametrize(
    ("synced", "status", "detail"),
    [
        (
            timedelta(hours=25),
            FAIL,
            "taker 10.000, maker 5.000 bps, read from the venue 1\xa0day, 1\xa0hour ago "
            "(limit 1\xa0day): run `manage.py sync_fees --exchange binance`",
        ),
        (
            None,
            FAIL,
            "taker 10.000, maker 5.000 bps, never read from the venue: run "
            "`manage.py sync_fees --exchange binance`",
        ),
    ],
)
def test_stale_or_never_synced_fees_fail(venues, synced, status, detail):
    at = None if synced is None else timezone.now() - synced
    Exchange.objects.filter(slug="binance").update(fees_synced_at=at)

    assert by_name("binance")["fees fresh"] == (status, detail)


def test_stale_trading_rules_fail_and_say_what_to_run(venues):
    Exchange.objects.filter(slug="coinbase").update(
        rules_synced_at=timezone.now() - timedelta(days=3)
    )

    status, detail = by_name("coinbase")["trading rules fresh"]

    assert status == FAIL
    assert detail.endswith("(limit 2\xa0days): run `manage.py sync_listings --exchange coinbase`")


def test_stale_fees_make_live_check_exit_non_zero(venues):
    Exchange.objects.filter(slug="kraken").update(fees_synced_at=None)

    _, error = live_check("--exchange", "kraken")

    assert error == "1 check failed."


def test_keys_that_do_not_decrypt_fail_and_the_venue_is_not_asked(venues, settings, sim):
    settings.CREDENTIALS_KEY = Fernet.generate_key().decode()

    checks = readiness(venues["binance"])

    assert [(c.name, c.status) for c in checks] == [("credentials decrypt", FAIL)]
    assert "CREDENTIALS_KEY is not the key they were stored with" in checks[0].detail


def test_a_named_venue_without_a_key_fails(venues):
    ExchangeCredential.objects.filter(exchange__slug="kraken").delete()

    lines, error = live_check("--exchange", "kraken")

    assert lines == [
        "kraken    FAIL credentials decrypt: no API credential: add one in the admin "
        "(Exchange credentials)"
    ]
    assert error == "1 check failed."


def test_an_unknown_venue_is_a_clear_error(venues):
    assert live_check("--exchange", "nasdaq") == ([], "No venue 'nasdaq'.")


def staff(client, user_with_role, role: str):
    user = user_with_role(role)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return user


def test_an_administrator_checks_readiness_from_the_exchange_admin(
    client, user_with_role, venues, sim
):
    staff(client, user_with_role, ADMINISTRATOR)
    sim.venues["binance"].can_withdraw.add(demo_key("binance")[0])

    response = client.post(
        reverse("admin:markets_exchange_changelist"),
        {"action": "check_live_readiness", "_selected_action": [venues["binance"].pk]},
        follow=True,
    )

    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert [text.split()[:3] for _, text in shown] == [
        ["binance", status, name.split()[0]]
        for status, name in zip([PASS, PASS, FAIL, PASS, PASS, PASS, PASS], CHECKS, strict=True)
    ]
    assert [level for level, _ in shown[1:3]] == ["success", "error"]
    assert "the key can withdraw and transfer funds" in shown[2][1]


@pytest.mark.parametrize("role", [VIEWER, RISK_MANAGER])
def test_only_an_administrator_may_run_the_check(client, user_with_role, venues, role):
    staff(client, user_with_role, role)  # even let into the admin

    response = client.post(
        reverse("admin:markets_exchange_changelist"),
        {"action": "check_live_readiness", "_selected_action": [venues["binance"].pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert not [text for text in shown if text.startswith("binance")], shown


def test_an_administrator_writes_an_override_in_the_admin_and_it_is_audited(
    client, user_with_role, venues
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    credential = ExchangeCredential.objects.get(exchange__slug="coinbase")
    url = reverse("admin:markets_exchangecredential_change", args=[credential.pk])
    page = client.get(url).content.decode()
    assert "Why this key may withdraw" in page
    assert "Leave blank to keep the stored key." in page

    response = client.post(
        reverse("admin:markets_exchangecredential_change", args=[credential.pk]),
        {"exchange": credential.exchange_id, "withdrawal_override": "  sweeps to cold storage  "},
    )

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.withdrawal_override == "sweeps to cold storage"
    assert credential.withdrawal_override_by == administrator.username
    assert credential.withdrawal_override_at is not None
    assert credential.api_key == demo_key("coinbase")[0]  # the keys were left as they were
    event = AuditEvent.objects.get(action="exchange credential changed")
    assert event.user == administrator
    assert event.after["withdrawal_override"] == "sweeps to cold storage"
    assert event.after["withdrawal_override_by"] == administrator.username
    assert event.before["withdrawal_override"] == ""


def test_emptying_the_override_in_the_admin_removes_it_and_the_check_fails_again(
    client, user_with_role, venues, sim
):
    staff(client, user_with_role, ADMINISTRATOR)
    sim.venues["binance"].can_withdraw.add(demo_key("binance")[0])
    override("binance")
    credential = ExchangeCredential.objects.get(exchange__slug="binance")

    client.post(
        reverse("admin:markets_exchangecredential_change", args=[credential.pk]),
        {"exchange": credential.exchange_id, "withdrawal_override": ""},
    )

    credential.refresh_from_db()
    assert (credential.withdrawal_override, credential.withdrawal_override_by) == ("", "")
    assert credential.withdrawal_override_at is None
    event = AuditEvent.objects.get(action="exchange credential changed")
    assert event.before["withdrawal_override"] == "the treasury sweeps profits out weekly"
    assert by_name("binance")["key rights"][0] == FAIL


def test_new_keys_drop_the_replaced_keys_override_though_the_form_still_showed_it(
    client, user_with_role, venues
):
    staff(client, user_with_role, ADMINISTRATOR)
    override("binance")
    credential = ExchangeCredential.objects.get(exchange__slug="binance")
    new_key, new_secret = "new-binance-key", demo_key("binance")[1]

    response = client.post(  # the form still shows the old override, unchanged
        reverse("admin:markets_exchangecredential_change", args=[credential.pk]),
        {
            "exchange": credential.exchange_id,
            "new_api_key": new_key,
            "new_secret": new_secret,
            "withdrawal_override": credential.withdrawal_override,
        },
    )

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.api_key == new_key
    assert (credential.withdrawal_override, credential.withdrawal_override_by) == ("", "")
    assert credential.withdrawal_override_at is None


def test_new_keys_with_an_override_written_in_the_same_change_keep_it_signed(
    client, user_with_role, venues
):
    administrator = staff(client, user_with_role, ADMINISTRATOR)
    override("kraken")
    credential = ExchangeCredential.objects.get(exchange__slug="kraken")

    client.post(
        reverse("admin:markets_exchangecredential_change", args=[credential.pk]),
        {
            "exchange": credential.exchange_id,
            "new_api_key": "new-kraken-key",
            "new_secret": "c2VjcmV0",
            "withdrawal_override": "the new key sweeps to cold storage",
        },
    )

    credential.refresh_from_db()
    assert credential.api_key == "new-kraken-key"
    assert credential.withdrawal_override == "the new key sweeps to cold storage"
    assert credential.withdrawal_override_by == administrator.username


def test_a_key_without_its_secret_is_a_form_error_and_changes_nothing(
    client, user_with_role, venues
):
    staff(client, user_with_role, ADMINISTRATOR)
    credential = ExchangeCredential.objects.get(exchange__slug="kraken")

    response = client.post(
        reverse("admin:markets_exchangecredential_change", args=[credential.pk]),
        {"exchange": credential.exchange_id, "new_api_key": "new-key", "withdrawal_override": "x"},
    )

    assert response.status_code == 200
    assert "Give the API key and the secret together, or neither." in response.content.decode()
    credential.refresh_from_db()
    assert (credential.api_key, credential.withdrawal_override) == (demo_key("kraken")[0], "")


def test_a_venue_clock_ten_minutes_behind_also_refuses_signed_calls_in_its_words(venues, sim):
    sim.venues["binance"].clock_skew = -600.0

    checks = by_name("binance")

    assert checks["key authenticates"] == (
        FAIL,
        "a signed call was refused: InvalidNonce: Timestamp for this request is outside of the "
        "recvWindow.",
    )
    assert checks["clock skew"][0] == FAIL


def test_a_venue_without_an_orders_module_fails_without_being_asked(venues):
    other = ExchangeFactory(slug="bitstamp", name="Bitstamp")
    credential = ExchangeCredential(exchange=other)
    credential.set_keys(api_key="bitstamp-key-0001", secret="s")
    credential.save()

    lines, error = live_check("--exchange", "bitstamp")

    assert lines == [
        "bitstamp  PASS credentials decrypt: key …0001",
        "bitstamp  FAIL key authenticates: bitstamp has no orders module: the desk can watch it "
        "but not trade it live",
    ]
    assert error == "1 check failed."


def test_a_key_that_cannot_trade_fails_and_no_override_helps():
    rights = KeyRights(trade=False, withdraw=False, transfer=False, stated="can_trade=false")
    written = Override("we need it", "alice", timezone.now())

    assert rights_check(rights, "Coinbase", written) == (
        FAIL,
        "the key cannot trade (can_trade=false)",
    )


@pytest.mark.parametrize(
    ("withdraw", "transfer", "can"),
    [(True, False, "withdraw"), (False, True, "transfer"), (True, True, "withdraw and transfer")],
)
def test_either_way_of_moving_funds_is_refused(withdraw, transfer, can):
    rights = KeyRights(trade=True, withdraw=withdraw, transfer=transfer, stated="flags")

    status, detail = rights_check(rights, "Binance", None)

    assert (status, detail.startswith(f"the key can {can} funds (flags): refused.")) == (FAIL, True)


@pytest.mark.parametrize(
    ("skew", "status"),
    [(0.0, PASS), (1.0, PASS), (-1.0, PASS), (1.001, FAIL), (-1.001, FAIL), (-600.0, FAIL)],
)
def test_the_clock_may_be_off_by_one_second_either_way(skew, status):
    assert clock_check(skew)[0] == status


def test_a_venue_whose_time_cannot_be_read_fails_the_clock_check():
    assert clock_check(VenueError("RequestTimeout: binance GET timed out")) == (
        FAIL,
        "the venue's time unread: RequestTimeout: binance GET timed out",
    )


@pytest.mark.parametrize(
    ("age", "status"), [(timedelta(hours=24), PASS), (timedelta(hours=24, seconds=1), FAIL)]
)
def test_fees_are_fresh_for_a_day(age, status):
    now = timezone.now()

    assert freshness("", now - age, now, FEES_MAX_AGE, "sync_fees")[0] == status


def test_the_simulated_venues_serve_their_trading_rules_so_a_sync_makes_them_fresh(venues):
    Exchange.objects.update(rules_synced_at=None)
    out = StringIO()

    call_command("sync_listings", stdout=out)

    for slug in SYMBOLS:
        assert by_name(slug)["trading rules fresh"][0] == PASS
        listing = Exchange.objects.get(slug=slug).listings.get()
        rule = (listing.tick_size, listing.lot_size, listing.min_size, listing.enabled)
        assert rule == (D("0.1"), D("0.0001"), D("0.0001"), True), slug  # the factory's: 0.01
    assert out.getvalue().count("1 changed, 0 unchanged, 0 not in the venue's answer") == len(
        SYMBOLS
    )
