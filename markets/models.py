"""Exchanges (venues), markets and each venue's listing of a market."""

import os
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.dispatch import Signal
from django.utils import timezone

from markets.rules import TradingRule

# A venue's URLs are dialled by the engine and the workers: only its own protocols, with a host
# (letters, digits, dots, hyphens; a port; brackets for IPv6), never javascript: or file:.
websocket_url = RegexValidator(
    r"\Awss?://[A-Za-z0-9\[][A-Za-z0-9.\-\[\]:]*(?:[/?]\S*)?\Z",
    "A WebSocket URL is ws:// or wss:// and a host, e.g. wss://ws.kraken.com/v2.",
)
http_url = RegexValidator(
    r"\Ahttps?://[A-Za-z0-9\[][A-Za-z0-9.\-\[\]:]*(?:[/?]\S*)?\Z",
    "A REST base URL is http:// or https:// and a host, e.g. https://api.binance.com.",
)


# The simulated venues this process started (slug: REST base URL): where its orders, fee syncs
# and reconciliations go while they run, whatever port the Exchange rows were seeded with.
SIMULATED_REST: dict[str, str] = {}


def url_override(name: str, validator: RegexValidator) -> str:
    """The environment's override of a venue URL (empty: none), checked like the field."""
    value = os.environ.get(name, "")
    if not value:
        return ""
    try:
        validator(value)
    except ValidationError as exc:
        raise ImproperlyConfigured(f"{name}: {exc.messages[0]}") from exc
    return value


class Exchange(models.Model):
    slug = models.SlugField(unique=True, help_text="Short id used in code and URLs, e.g. kraken.")
    name = models.CharField(max_length=60)
    ws_url = models.CharField("WebSocket URL", max_length=200, validators=[websocket_url])
    rest_url = models.CharField("REST base URL", max_length=200, blank=True, validators=[http_url])
    taker_fee_bps = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Taker fee in basis points of the leg's quote notional (per account tier).",
    )
    maker_fee_bps = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    enabled = models.BooleanField(default=True)
    fees_synced_at = models.DateTimeField(
        "fees read from the venue at",
        null=True,
        blank=True,
        editable=False,
        help_text="When the fees were last set from the account's tier at the venue "
        "(`sync_fees`); empty while they are as typed in.",
    )
    rules_synced_at = models.DateTimeField(
        "trading rules read from the venue at",
        null=True,
        blank=True,
        editable=False,
        help_text="When the listings' trading rules were last set from the venue's own answer "
        "(`sync_listings`); empty while they are as typed in.",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def taker_fee(self) -> Decimal:
        """The taker fee as a fraction of notional."""
        return self.taker_fee_bps / Decimal(10_000)

    def effective_ws_url(self) -> str:
        """The WebSocket URL, overridden by ARB_<SLUG>_WS_URL when set."""
        return url_override(f"ARB_{self.slug.upper()}_WS_URL", websocket_url) or self.ws_url

    def effective_rest_url(self) -> str:
        """The REST base URL, overridden by ARB_<SLUG>_REST_URL when set, else by the simulated
        venue this process runs in its place (`run_arbitrage --simulate`)."""
        override = url_override(f"ARB_{self.slug.upper()}_REST_URL", http_url)
        return override or SIMULATED_REST.get(self.slug) or self.rest_url


# A market's symbol is canonical and part of its page's URL; a venue's symbol is the venue's own
# code (Kraken's "BTC/USD", Binance's "BTCUSDT"), a sane one of letters, digits and separators.
market_symbol = RegexValidator(
    r"\A[A-Z0-9]{1,12}-[A-Z0-9]{1,12}\Z",
    "A market symbol is BASE-QUOTE in capitals and digits, e.g. BTC-USD.",
)
venue_symbol = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9/_.:-]*\Z",
    "A venue symbol is letters and digits, perhaps separated by / _ . : or -, e.g. BTC/USD.",
)


class Market(models.Model):
    symbol = models.CharField(
        max_length=30,
        unique=True,
        validators=[market_symbol],
        help_text="Canonical, e.g. BTC-USD.",
    )
    base = models.CharField(max_length=12)
    quote = models.CharField(max_length=12)
    exchanges = models.ManyToManyField(Exchange, through="Listing", related_name="markets")

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class Listing(models.Model):
    """A market as one venue lists it: its symbol, tick size, lot size and minimum order value."""

    exchange = models.ForeignKey(Exchange, on_delete=models.CASCADE, related_name="listings")
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="listings")
    venue_symbol = models.CharField(
        max_length=30, validators=[venue_symbol], help_text="The venue's code, e.g. BTC/USD."
    )
    tick_size = models.DecimalField(max_digits=20, decimal_places=10)
    lot_size = models.DecimalField(max_digits=20, decimal_places=10)
    min_notional = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        default=0,
        help_text="The smallest order value the venue accepts, in quote (Binance's NOTIONAL "
        "filter); 0 for none. Orders under it are never sent.",
    )
    min_size = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        default=0,
        help_text="The smallest order size the venue accepts, in base; 0 for none.",
    )
    quote_currency = models.CharField(
        max_length=12,
        blank=True,
        help_text="The currency the venue quotes this listing in when it is not the market's "
        "(USDT for Binance's BTCUSDT in market BTC-USD); empty: the market's own.",
    )
    quote_interchangeable = models.BooleanField(
        default=False,
        help_text="The desk treats this listing's quote currency as the market's (USDT as "
        "USD): only then does a listing quoted in another currency enter the market's crosses.",
    )
    enabled = models.BooleanField(default=True)
    halted_reason = models.CharField(
        max_length=100,
        blank=True,
        help_text="Why the venue does not trade it now, as the last sync of its trading rules "
        "read it (e.g. Binance status BREAK); empty when it trades.",
    )

    class Meta:
        ordering = ["market__symbol", "exchange__slug"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "market"], name="one_listing_per_venue"),
            models.UniqueConstraint(
                fields=["exchange", "venue_symbol"], name="venue_symbol_unique"
            ),
            models.CheckConstraint(condition=models.Q(tick_size__gt=0), name="tick_size_positive"),
            models.CheckConstraint(condition=models.Q(lot_size__gt=0), name="lot_size_positive"),
            models.CheckConstraint(
                condition=models.Q(min_notional__gte=0), name="min_notional_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(min_size__gte=0), name="min_size_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market} on {self.exchange.slug} ({self.venue_symbol})"

    @property
    def foreign_quote(self) -> str:
        """The listing's quote currency when it differs from its market's; empty otherwise."""
        quote = self.quote_currency
        return quote if quote and quote != self.market.quote else ""

    @property
    def crosses_in_market(self) -> bool:
        """Whether this listing's book may be crossed with the market's other listings: it is
        quoted in the market's currency, or the desk marked its quote interchangeable."""
        return not self.foreign_quote or self.quote_interchangeable

    def trading_rule(self) -> TradingRule:
        """What the venue accepts for this market, as one value for execution to hold."""
        reason = "" if self.enabled else self.halted_reason or "the listing is disabled"
        return TradingRule(
            venue_symbol=self.venue_symbol,
            tick=self.tick_size,
            lot=self.lot_size,
            min_size=self.min_size,
            min_notional=self.min_notional,
            tradable=self.enabled,
            reason=reason,
        )

    def take_rule(self, rule: TradingRule) -> tuple[dict, dict]:
        """Set the venue's `rule` on this listing (unsaved); the (before, after) of each field
        that changed, as text, both empty when none did."""
        wanted = {
            "tick_size": rule.tick,
            "lot_size": rule.lot,
            "min_size": rule.min_size,
            "min_notional": rule.min_notional,
            "enabled": rule.tradable,
            "halted_reason": rule.reason[:100],
        }
        before, after = {}, {}
        for name, value in wanted.items():
            if getattr(self, name) != value:
                before[name], after[name] = _text(getattr(self, name)), _text(value)
                setattr(self, name, value)
        return before, after


def _text(value: Decimal | bool | str) -> str | bool:
    return format(value, "f") if isinstance(value, Decimal) else value


# Sent after a sync of trading rules saved a listing: sender Listing, and `listing`, `before`,
# `after` (the changed fields), `user` and `request` (None for the command and the schedule).
listing_synced = Signal()
# Sent after a fee sync changed an exchange's fees: sender Exchange, and `exchange`, `sync` (a
# markets.venues.fees.FeeSync: before and after), `user` and `request` (None off the admin).
exchange_fees_synced = Signal()


class ExchangeCredential(models.Model):
    """API keys for one venue's live trading, encrypted at rest with CREDENTIALS_KEY (Fernet)."""

    exchange = models.OneToOneField(Exchange, on_delete=models.CASCADE, related_name="credential")
    api_key_encrypted = models.TextField(editable=False)
    secret_encrypted = models.TextField(editable=False)
    passphrase_encrypted = models.TextField(editable=False, blank=True)
    # The last nonce signed with this key (Kraken): it must rise across every worker process.
    last_nonce = models.BigIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    withdrawal_override = models.TextField(
        "why this key may withdraw",
        blank=True,
        help_text="A key the venue says can withdraw or transfer funds fails the live readiness "
        "check. Only if it must keep those rights, write here why: the check then warns and "
        "quotes this. Empty the field to withdraw the override; new keys withdraw it too, unless "
        "you write one for them in the same change.",
    )
    # Who wrote the override and when (set with it, by `override_withdrawals`).
    withdrawal_override_by = models.CharField(max_length=150, blank=True, editable=False)
    withdrawal_override_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"API credential for {self.exchange}"

    def save(self, *args, **kwargs) -> None:
        # The nonce moves only by `next_nonce`: saving a row read earlier (new keys, the admin)
        # must not set it back under the workers drawing nonces.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if f.name not in ("id", "last_nonce")
            ]
        super().save(*args, **kwargs)

    @staticmethod
    def _fernet():
        from cryptography.fernet import Fernet

        key = settings.CREDENTIALS_KEY
        if not key:
            raise ImproperlyConfigured(
                "Set CREDENTIALS_KEY (a Fernet key) in the environment before storing or using "
                "API keys."
            )
        try:
            return Fernet(key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                "CREDENTIALS_KEY is not a Fernet key (32 url-safe base64-encoded bytes); make one "
                "with Fernet.generate_key()."
            ) from exc

    def _seal(self, value: str) -> str:
        return self._fernet().encrypt(value.encode()).decode() if value else ""

    def _open(self, token: str) -> str:
        return self._fernet().decrypt(token.encode()).decode() if token else ""

    def set_keys(self, *, api_key: str, secret: str, passphrase: str = "") -> None:
        """Encrypt and hold new keys on this instance; the caller saves.

        A withdrawal override was written for the key it replaces: it goes with that key."""
        self.override_withdrawals("", by="")
        self.api_key_encrypted = self._seal(api_key)
        self.secret_encrypted = self._seal(secret)
        self.passphrase_encrypted = self._seal(passphrase)

    def override_withdrawals(self, reason: str, *, by: str) -> None:
        """Write (or, with an empty `reason`, remove) the override, signed by `by` now; the
        caller saves."""
        reason = reason.strip()
        self.withdrawal_override = reason
        self.withdrawal_override_by = by if reason else ""
        self.withdrawal_override_at = timezone.now() if reason else None

    def next_nonce(self, now_ms: int) -> int:
        """The next nonce for this key, `max(last + 1, now_ms)`, above any other process's: the
        UPDATE locks the row until the read commits."""
        rows = ExchangeCredential.objects.filter(pk=self.pk)
        with transaction.atomic():
            rows.update(last_nonce=Greatest(F("last_nonce") + 1, now_ms))
            self.last_nonce = rows.values_list("last_nonce", flat=True).get()
        return self.last_nonce

    @property
    def api_key(self) -> str:
        return self._open(self.api_key_encrypted)

    @property
    def secret(self) -> str:
        return self._open(self.secret_encrypted)

    @property
    def passphrase(self) -> str:
        return self._open(self.passphrase_encrypted)
