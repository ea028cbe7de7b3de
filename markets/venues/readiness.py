"""Whether a live venue is ready to trade: its key, the key's rights, the clocks, the balances,
the fees and the trading rules, one line per check; `live_check` and the Exchange admin both
print `readiness()`."""

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.timesince import timesince

from markets.models import Exchange, ExchangeCredential
from markets.venues.live import NotTradable, live_venue
from markets.venues.orders import KeyRights, Venue, VenueError

PASS, INFO, WARN, FAIL = "PASS", "INFO", "WARN", "FAIL"
# Binance refuses a request stamped more than 1 s ahead of its clock; the same bound keeps
# Kraken's order deadline (2 s at least) and Coinbase's JWT lifetimes meaning what they say.
MAX_SKEW_S = 1.0
FEES_MAX_AGE = timedelta(hours=24)  # synced hourly (`sync-venue-fees`)
RULES_MAX_AGE = timedelta(hours=48)  # synced daily: one missed sync is tolerated


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome on one venue, with its figures."""

    venue: str
    name: str
    status: str  # PASS, INFO, WARN or FAIL
    detail: str

    def __str__(self) -> str:
        return f"{self.venue:<9} {self.status:<4} {self.name}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Override:
    """An Administrator's written reason for keeping a key that can move funds."""

    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Answers:
    """What the venue answered to the readiness questions, or VenueError in its words."""

    balances: dict[str, Decimal] | VenueError
    rights: KeyRights | VenueError | None
    skew_s: float | VenueError  # the venue's clock less ours


def live_exchanges(slug: str | None = None):
    """The venues to check: every one the desk holds a key for, or the one named."""
    if slug:
        return Exchange.objects.filter(slug=slug)
    return Exchange.objects.filter(credential__isnull=False)


def readiness(exchange: Exchange, *, now: datetime | None = None) -> list[Check]:
    """Every check on `exchange`; the venue is asked only once its key decrypts."""
    now = now or timezone.now()

    def line(name: str, outcome: tuple[str, str]) -> Check:
        return Check(exchange.slug, name, *outcome)

    credential = ExchangeCredential.objects.filter(exchange=exchange).first()
    key = credentials_check(credential)
    checks = [line("credentials decrypt", key)]
    if key[0] == FAIL:
        return checks
    try:
        venue = live_venue(exchange)
    except (NotTradable, ImproperlyConfigured) as exc:  # no orders module; a bad URL override
        return [*checks, line("key authenticates", (FAIL, str(exc)))]
    answers = async_to_sync(ask_venue)(venue)
    return [
        *checks,
        line("key authenticates", authentication_check(answers.balances)),
        line("key rights", rights_check(answers.rights, exchange.name, override_of(credential))),
        line("clock skew", clock_check(answers.skew_s)),
        line("balances fetched", balances_check(answers.balances)),
        line("fees fresh", fees_check(exchange, now)),
        line("trading rules fresh", rules_check(exchange, now)),
    ]


async def ask_venue(venue: Venue) -> Answers:
    """The venue's answers, one question after another (Kraken's nonces must arrive in order)."""
    balances = await _answer(venue.fetch_balances())
    rights = await _answer(venue.key_rights())
    return Answers(balances=balances, rights=rights, skew_s=await _answer(venue.clock_skew()))


async def _answer[T](question: Awaitable[T]) -> T | VenueError:
    try:
        return await question
    except VenueError as exc:
        return exc


def override_of(credential: ExchangeCredential) -> Override | None:
    if not credential.withdrawal_override:
        return None
    return Override(
        credential.withdrawal_override,
        credential.withdrawal_override_by,
        credential.withdrawal_override_at,
    )


def credentials_check(credential: ExchangeCredential | None) -> tuple[str, str]:
    if credential is None:
        return FAIL, "no API credential: add one in the admin (Exchange credentials)"
    try:
        key = credential.api_key
        credential.secret  # noqa: B018 - decrypted only to know that it can be
    except ImproperlyConfigured as exc:
        return FAIL, str(exc)
    except InvalidToken:
        return FAIL, "the keys do not decrypt: CREDENTIALS_KEY is not the key they were stored with"
    return PASS, f"key {_masked(key)}"


def authentication_check(balances: dict[str, Decimal] | VenueError) -> tuple[str, str]:
    if isinstance(balances, VenueError):
        return FAIL, f"a signed call was refused: {balances}"
    return PASS, "a signed call (the account's balances) answered"


def rights_check(
    rights: KeyRights | VenueError | None, venue_name: str, override: Override | None
) -> tuple[str, str]:
    """FAIL for a key that cannot trade, or can move funds unless overridden (then WARN)."""
    if isinstance(rights, VenueError):
        return FAIL, f"unread: {rights}"
    if rights is None:
        return INFO, (
            f"{venue_name} does not report a key's permissions; check them on its site: "
            "trading on, withdrawal and transfer of funds off"
        )
    if not rights.trade:
        return FAIL, f"the key cannot trade ({rights.stated})"
    moves = [name for name in ("withdraw", "transfer") if getattr(rights, name)]
    if not moves:
        return PASS, f"trades, cannot withdraw or transfer ({rights.stated})"
    can = f"the key can {' and '.join(moves)} funds ({rights.stated})"
    if override is None:
        return FAIL, (
            f"{can}: refused. Remove the right at the venue, or an Administrator writes why "
            "it must stay on the credential"
        )
    at = timezone.localtime(override.at).strftime("%Y-%m-%d %H:%M %Z")
    return WARN, f'{can}; overridden by {override.by} at {at}: "{override.reason}"'


def clock_check(skew_s: float | VenueError) -> tuple[str, str]:
    if isinstance(skew_s, VenueError):
        return FAIL, f"the venue's time unread: {skew_s}"
    figure = f"{skew_s:+.3f} s against the venue's server time (limit ±{MAX_SKEW_S:g} s)"
    if abs(skew_s) > MAX_SKEW_S:
        return FAIL, f"{figure}: set this machine's clock (NTP)"
    return PASS, figure


def balances_check(balances: dict[str, Decimal] | VenueError) -> tuple[str, str]:
    if isinstance(balances, VenueError):
        return FAIL, f"unread: {balances}"
    held = [
        f"{asset} {amount.normalize():f}" for asset, amount in sorted(balances.items()) if amount
    ]
    return PASS, ", ".join(held) or "the account holds nothing"


def fees_check(exchange: Exchange, now: datetime) -> tuple[str, str]:
    fees = f"taker {exchange.taker_fee_bps}, maker {exchange.maker_fee_bps} bps"
    return freshness(
        f"{fees}, ",
        exchange.fees_synced_at,
        now,
        FEES_MAX_AGE,
        f"sync_fees --exchange {exchange.slug}",
    )


def rules_check(exchange: Exchange, now: datetime) -> tuple[str, str]:
    command = f"sync_listings --exchange {exchange.slug}"
    return freshness("", exchange.rules_synced_at, now, RULES_MAX_AGE, command)


def freshness(
    what: str, synced_at: datetime | None, now: datetime, max_age: timedelta, command: str
) -> tuple[str, str]:
    """PASS if read from the venue within `max_age` of `now`; else FAIL saying what to run."""
    limit = f"limit {timesince(now - max_age, now)}"
    if synced_at is None:
        return FAIL, f"{what}never read from the venue: run `manage.py {command}`"
    age = f"{what}read from the venue {timesince(synced_at, now)} ago ({limit})"
    if now - synced_at > max_age:
        return FAIL, f"{age}: run `manage.py {command}`"
    return PASS, age


def _masked(api_key: str) -> str:
    """Enough of the key to tell which it is, never all of it."""
    return f"…{api_key[-4:]}" if len(api_key) > 8 else "(short)"
