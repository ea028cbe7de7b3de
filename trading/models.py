"""Opportunities (one row per lifecycle of a cross that pays) and the trades taken on them."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from markets import notices
from markets.models import Exchange
from portfolio.models import Mode


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=28, decimal_places=12, **kwargs)


class Opportunity(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT)
    buy_exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    sell_exchange = models.ForeignKey(
        "markets.Exchange", on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=6, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=40, blank=True)
    # The last observed cross.
    size = _money()
    buy_vwap = _money()
    sell_vwap = _money()
    gross_profit = _money()
    fees = _money()
    net_profit = _money()
    net_bps = models.DecimalField(max_digits=14, decimal_places=4)
    levels_walked = models.JSONField(default=dict)
    # The worst ask and bid the walk took (`Cross.buy_limit`/`sell_limit`): the legs' limits, so
    # each leg can fill the whole size through the levels walked and every unit still pays at
    # least the threshold. Empty on rows written before they were kept (the VWAPs serve then).
    buy_limit = _money(null=True, blank=True)
    sell_limit = _money(null=True, blank=True)
    exchange_ts = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField()
    # Over the whole lifecycle.
    peak_net_profit = _money()
    peak_net_bps = models.DecimalField(max_digits=14, decimal_places=4)
    updates = models.PositiveIntegerField(default=0)
    # Why it was not taken: {reason: times refused}, counted, not a row per tick.
    refusals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name_plural = "opportunities"
        indexes = [
            # The opportunities page: newest first, filtered by market.
            models.Index(fields=["market", "-opened_at"], name="opp_market_opened"),
            # The dashboard and the engine's restart clean-up: open ones.
            models.Index(fields=["state", "-opened_at"], name="opp_state_opened"),
        ]

    def __str__(self) -> str:
        return f"{self.market} buy {self.buy_exchange.slug} sell {self.sell_exchange.slug}"

    @property
    def duration(self):
        return (self.closed_at - self.opened_at) if self.closed_at else None


class Trade(models.Model):
    """One attempt to take an opportunity: two legs, then a hedge or unwind if they differ.

    States move only through `advance`, a guarded update whose row count says who won.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTED = "submitted", "Submitted"
        FILLED = "filled", "Filled"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        HEDGED = "hedged", "Hedged"
        UNWOUND = "unwound", "Unwound"
        CLOSED = "closed", "Closed"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    NEXT_STATES = {
        State.PENDING: {State.SUBMITTED, State.REJECTED, State.FAILED},
        State.SUBMITTED: {State.FILLED, State.PARTIALLY_FILLED, State.FAILED},
        State.FILLED: {State.CLOSED},
        # Closed from here only by a person keeping the residual (`keep_residual`).
        State.PARTIALLY_FILLED: {State.HEDGED, State.UNWOUND, State.CLOSED},
        State.HEDGED: {State.CLOSED},
        State.UNWOUND: {State.CLOSED},
    }
    # The column stamped when a trade enters each state.
    STAMPS = {
        State.SUBMITTED: "submitted_at",
        State.FILLED: "filled_at",
        State.PARTIALLY_FILLED: "filled_at",
        State.HEDGED: "hedged_at",
        State.UNWOUND: "hedged_at",
        State.CLOSED: "closed_at",
        State.REJECTED: "closed_at",
        State.FAILED: "closed_at",
    }

    opportunity = models.ForeignKey(Opportunity, on_delete=models.PROTECT, related_name="trades")
    mode = models.CharField(max_length=5, choices=Mode.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    requested_size = _money()
    expected_net_profit = _money()
    realised_net_profit = _money(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    # The base amount (signed: + bought more than sold) a person closed the trade with, kept as
    # inventory, when no order could balance its legs.
    residual = _money(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    hedged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The execution task's idempotency key: a second delivery finds this row.
            models.UniqueConstraint(fields=["opportunity"], name="one_trade_per_opportunity"),
        ]
        indexes = [
            # recover_trades: trades stuck in one state since before a cut-off.
            models.Index(fields=["state", "state_changed_at"], name="trade_state_changed"),
            # Trade history and today's PnL: newest closed first.
            models.Index(fields=["-closed_at"], name="trade_closed"),
        ]

    def __str__(self) -> str:
        return f"Trade {self.pk} ({self.state})"

    def advance(self, to_state: str, *, detail: str = "", **fields) -> bool:
        """Move from the state this instance holds to `to_state`; False if another writer won.

        Records a TradeEvent and tells the pages after commit; `fields` are saved with it.
        """
        from_state = self.state
        if to_state not in self.NEXT_STATES.get(from_state, ()):
            raise ValueError(f"A trade cannot go from {from_state} to {to_state}.")
        now = timezone.now()
        fields = {self.STAMPS[to_state]: now, **fields}
        with transaction.atomic():
            won = Trade.objects.filter(pk=self.pk, state=from_state).update(
                state=to_state, state_changed_at=now, **fields
            )
            if not won:
                return False
            TradeEvent.objects.create(
                trade=self, from_state=from_state, to_state=to_state, at=now, detail=detail[:200]
            )
            self.publish_change()
        self.state, self.state_changed_at = to_state, now
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def publish_change(self) -> None:
        """Tell the pages this trade changed, once the transaction commits: the trade lists,
        and its market's page (the chart marks the trade)."""
        notices.publish(notices.TRADES)
        market = Opportunity.objects.filter(pk=self.opportunity_id).values_list(
            "market__symbol", flat=True
        )
        symbol = market.first()
        if symbol:
            notices.publish(notices.TRADES, symbol)


class TradeEvent(models.Model):
    """One recorded state transition of a trade."""

    trade = models.ForeignKey(Trade, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, choices=Trade.State.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.trade_id}: {self.from_state or '-'} -> {self.to_state}"


@dataclass(frozen=True, slots=True)
class AckLatency:
    """A venue's order acknowledgement times (ms) over its newest orders in one mode."""

    orders: int
    p50_ms: float
    p99_ms: float


# Nearest-rank percentiles (the smallest time at or above that share of the window), so each
# figure is one the venue really took, by PostgreSQL's window functions.
_ACK_LATENCY_SQL = """
SELECT e.id, figures.*
FROM {exchange} e
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS orders,
        MIN(CASE WHEN pos * 100 >= n * 50 THEN ack_ms END),
        MIN(CASE WHEN pos * 100 >= n * 99 THEN ack_ms END)
    FROM (
        SELECT ack_ms, ROW_NUMBER() OVER (ORDER BY ack_ms) AS pos, COUNT(*) OVER () AS n
        FROM (
            SELECT o.ack_ms FROM {order} o JOIN {trade} t ON t.id = o.trade_id
            WHERE o.exchange_id = e.id AND t.mode = %s AND o.ack_ms IS NOT NULL
                AND o.created_at > COALESCE(
                    (SELECT since.at FROM unnest(%s::bigint[], %s::timestamptz[]) AS since (id, at)
                     WHERE since.id = e.id),
                    '-infinity'::timestamptz)
            ORDER BY o.created_at DESC, o.id DESC LIMIT %s
        ) recent
    ) ranked
) figures
WHERE figures.orders > 0
"""


class OrderQuerySet(models.QuerySet):
    def ack_latency(
        self, *, mode: str, window: int, since: Mapping[int, datetime] | None = None
    ) -> dict[int, AckLatency]:
        """Each venue's p50 and p99 acknowledgement time over its newest `window` timed orders
        in `mode` (only those after `since[exchange id]` where given), by exchange id (venues
        without one left out); computed in the database.

        One query, reading each venue's newest orders through their index (a lateral join per
        venue): one round trip, where one per venue made the dashboard's venue health and the
        execution desk's pause check wait for each in turn.
        """
        since = since or {}
        sql = _ACK_LATENCY_SQL.format(
            exchange=Exchange._meta.db_table,
            order=Order._meta.db_table,
            trade=Trade._meta.db_table,
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [mode, list(since), list(since.values()), window])
            return {pk: AckLatency(orders, p50, p99) for pk, orders, p50, p99 in cursor.fetchall()}


class Order(models.Model):
    """One immediate-or-cancel limit order on one venue: a leg, a hedge or an unwind."""

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class Purpose(models.TextChoices):
        LEG = "leg", "Leg"
        HEDGE = "hedge", "Hedge"
        UNWIND = "unwind", "Unwind"

    class State(models.TextChoices):
        NEW = "new", "New"
        SUBMITTED = "submitted", "Submitted"
        FILLED = "filled", "Filled"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        CANCELED = "canceled", "Canceled (nothing filled)"
        REJECTED = "rejected", "Rejected by the venue"

    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="orders")
    exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=6, choices=Purpose.choices, default=Purpose.LEG)
    side = models.CharField(max_length=4, choices=Side.choices)
    limit_price = _money()
    amount = _money()
    filled_amount = _money(default=0)
    average_price = _money(null=True, blank=True)
    fee = _money(default=0)
    client_order_id = models.CharField(max_length=40, unique=True)
    venue_order_id = models.CharField(max_length=80, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    error = models.CharField(max_length=200, blank=True)
    # From handing the order to the venue's client to its answer (or its failure); empty for an
    # order never sent, or sent before this was measured.
    ack_ms = models.FloatField("acknowledgement time (ms)", null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["trade", "created_at", "id"]
        indexes = [
            # OrderQuerySet.ack_latency: a venue's newest orders.
            models.Index(fields=["exchange", "-created_at"], name="order_exchange_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(filled_amount__gte=0, filled_amount__lte=models.F("amount")),
                name="order_filled_within_amount",
            ),
            models.CheckConstraint(condition=models.Q(fee__gte=0), name="order_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.amount} @ {self.limit_price}"

    @property
    def is_open(self) -> bool:
        return self.state in {self.State.NEW, self.State.SUBMITTED}


class Fill(models.Model):
    """One execution of an order: price, amount and the fee charged in quote."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    price = _money()
    amount = _money()
    fee = _money(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # The last fill of a market before a time (the reports' end prices, holding_of): read
            # backwards from that time, not a sort of every fill.
            models.Index(fields=["at", "id"], name="fill_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="fill_amount_positive"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="fill_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} @ {self.price}"


class DailyRollup(models.Model):
    """Settled trades of one UTC day for one market, venue pair and mode (reports.rollups)."""

    day = models.DateField()
    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT, related_name="+")
    buy_exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    sell_exchange = models.ForeignKey(
        "markets.Exchange", on_delete=models.PROTECT, related_name="+"
    )
    mode = models.CharField(max_length=5, choices=Mode.choices)
    closed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    volume = _money(default=0)
    fees = _money(default=0)
    net_profit = _money(default=0)
    won = _money(default=0)  # the net PnL of the closed trades that made money
    lost = _money(default=0)  # and of those that lost it (below zero)
    worst = _money(null=True)
    best = _money(null=True)
    one_legged = models.PositiveIntegerField(default=0)
    one_legged_cost = _money(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "market", "buy_exchange", "sell_exchange", "mode"],
                name="daily_rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.market_id} {self.buy_exchange_id}->{self.sell_exchange_id}"


class DailyVenueRollup(models.Model):
    """The notional the filled orders of a rollup's closed trades put to work on one venue."""

    rollup = models.ForeignKey(DailyRollup, on_delete=models.CASCADE, related_name="venues")
    exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    # Amount times price, unrounded (two money scales), so the period's sum rounds as one sum.
    capital = models.DecimalField(max_digits=60, decimal_places=24, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rollup", "exchange"], name="daily_venue_rollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.rollup} on {self.exchange_id}"


class DailyDrawdown(models.Model):
    """A UTC day's closed trades that a report's filter selects (a market, a venue on either
    leg, a mode; None or "" is any) as one stretch of their cumulative net PnL, from zero at the
    day's start: the points `performance.join_days` needs to find the period's maximum drawdown
    without reading the trades (a `performance.DayRun`)."""

    day = models.DateField()
    market = models.ForeignKey(
        "markets.Market", on_delete=models.PROTECT, null=True, related_name="+"
    )
    venue = models.ForeignKey(
        "markets.Exchange", on_delete=models.PROTECT, null=True, related_name="+"
    )
    mode = models.CharField(max_length=5, choices=Mode.choices, blank=True)
    net = _money()
    high = _money()
    high_at = models.DateTimeField()
    low_at = models.DateTimeField()
    low_id = models.BigIntegerField()
    low_cum = _money()
    low_high = _money()
    low_high_at = models.DateTimeField()
    fall_at = models.DateTimeField()
    fall_id = models.BigIntegerField()
    fall_cum = _money()
    fall_high = _money()
    fall_high_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One run per day and filter; it also serves the report's read of a filter's days.
            models.UniqueConstraint(
                fields=["market", "venue", "mode", "day"],
                name="daily_drawdown_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.market_id} {self.venue_id} {self.mode}"


class DailyOpportunityRollup(models.Model):
    """Opportunities opened on one UTC day for one market and venue pair."""

    day = models.DateField()
    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT, related_name="+")
    buy_exchange = models.ForeignKey("markets.Exchange", on_delete=models.PROTECT, related_name="+")
    sell_exchange = models.ForeignKey(
        "markets.Exchange", on_delete=models.PROTECT, related_name="+"
    )
    seen = models.PositiveIntegerField(default=0)
    taken = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    duration_total = models.DurationField(null=True)
    peak_net_profit = _money(default=0)
    peak_max = _money(null=True)
    # {reason: count}, {duration bucket: count} and {UTC hour: count}, summed by the report.
    refusals = models.JSONField(default=dict)
    durations = models.JSONField(default=dict)
    hours = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "market", "buy_exchange", "sell_exchange"],
                name="daily_opportunity_rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.market_id} {self.buy_exchange_id}->{self.sell_exchange_id}"


class RollupDay(models.Model):
    """A UTC day whose rollups are complete: the report reads rollups for it, not raw rows."""

    day = models.DateField(unique=True)
    computed_at = models.DateTimeField(default=timezone.now)
    # The figures its trades' rollups were computed with (trading.reports.rollups
    # TRADES_ROLLUP_VERSION); a day of older figures is rolled up again after `migrate`.
    trades_version = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.day)


def _export_path(instance: "Export", filename: str) -> str:
    return f"exports/{instance.user_id or 'desk'}/{filename}"


class Export(models.Model):
    """A file of trades or of the report summary, built by a task, kept for its owner a while.

    A scheduled export (no user) is the desk's daily summary, readable by every desk role.
    """

    class Kind(models.TextChoices):
        TRADES = "trades", "Trades with legs and fills"
        SUMMARY = "summary", "Summary"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=7, choices=Kind.choices)
    format = models.CharField(max_length=4, choices=Format.choices)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=7, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=_export_path, blank=True)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The reports page: a user's recent exports, newest first.
            models.Index(fields=["user", "-created_at"], name="export_user_created"),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} {self.kind}.{self.format} ({self.state})"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at
