"""The desk's history: the filter forms and queries of the opportunities and trades pages."""

from datetime import date, timedelta

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum

from markets.models import Exchange, Market
from markets.money import day_start
from portfolio.models import Mode
from trading.models import Fill, Opportunity, Order, Trade

OPPORTUNITY_SORTS = {
    "opened": "opened_at",
    "net": "net_profit",
    "bps": "net_bps",
    "peak": "peak_net_profit",
    "size": "size",
}
TRADE_SORTS = {"created": "created_at", "pnl": "realised_net_profit", "size": "requested_size"}
# The days a filter may name: any the desk can have history on, and near enough that the day
# after the last is still a date (9999-12-31 has none) and a database timestamp.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


class DayField(forms.DateField):
    """An optional day from FIRST_DAY to LAST_DAY; one outside is a form error."""

    def __init__(self, **kwargs) -> None:
        message = f"Enter a date between {FIRST_DAY} and {LAST_DAY}."
        bounds = {"min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()}
        super().__init__(
            required=False,
            widget=forms.DateInput({"type": "date", **bounds}),
            validators=[
                MinValueValidator(FIRST_DAY, message),
                MaxValueValidator(LAST_DAY, message),
            ],
            **kwargs,
        )


def _sort_choices(sorts: dict[str, str]) -> list[tuple[str, str]]:
    return [(p + key, p + key) for key in sorts for p in ("", "-")]


class OpportunityFilter(forms.Form):
    market = forms.ModelChoiceField(
        Market.objects.all(), to_field_name="symbol", required=False, empty_label="Any market"
    )
    buy = forms.ModelChoiceField(
        Exchange.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label="Any venue",
        label="Buy venue",
    )
    sell = forms.ModelChoiceField(
        Exchange.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label="Any venue",
        label="Sell venue",
    )
    since = DayField(label="From (UTC)")
    until = DayField(label="To (UTC)")
    taken = forms.ChoiceField(
        choices=[("", "Taken or not"), ("yes", "Taken"), ("no", "Not taken")], required=False
    )
    reason = forms.CharField(required=False, label="Risk reason (not taken)", max_length=80)
    sort = forms.ChoiceField(choices=_sort_choices(OPPORTUNITY_SORTS), required=False)


class TradeFilter(forms.Form):
    market = forms.ModelChoiceField(
        Market.objects.all(), to_field_name="symbol", required=False, empty_label="Any market"
    )
    venue = forms.ModelChoiceField(
        Exchange.objects.all(), to_field_name="slug", required=False, empty_label="Any venue"
    )
    state = forms.ChoiceField(choices=[("", "Any state"), *Trade.State.choices], required=False)
    mode = forms.ChoiceField(choices=[("", "Paper or live"), *Mode.choices], required=False)
    since = DayField(label="From (UTC)")
    until = DayField(label="To (UTC)")
    trade = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    sort = forms.ChoiceField(choices=_sort_choices(TRADE_SORTS), required=False)


def _in_days(qs: QuerySet, field: str, since, until) -> QuerySet:
    if since:
        qs = qs.filter(**{f"{field}__gte": day_start(since)})
    if until:
        qs = qs.filter(**{f"{field}__lt": day_start(until) + timedelta(days=1)})
    return qs


def _ordered(qs: QuerySet, sort: str, sorts: dict[str, str], default: str) -> QuerySet:
    key = sort.lstrip("-")
    if key not in sorts:
        return qs.order_by(f"-{default}", "-id")
    prefix = "-" if sort.startswith("-") else ""
    return qs.order_by(f"{prefix}{sorts[key]}", f"{prefix}id")


def filtered_opportunities(data) -> tuple[OpportunityFilter, QuerySet]:
    """Return the bound filter form and the opportunities it selects, sorted."""
    form = OpportunityFilter(data)
    qs = Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange").annotate(
        taken=Exists(Trade.objects.filter(opportunity=OuterRef("pk")))
    )
    if not form.is_valid():
        return form, qs.none()
    f = form.cleaned_data
    if f["market"]:
        qs = qs.filter(market=f["market"])
    if f["buy"]:
        qs = qs.filter(buy_exchange=f["buy"])
    if f["sell"]:
        qs = qs.filter(sell_exchange=f["sell"])
    qs = _in_days(qs, "opened_at", f["since"], f["until"])
    if f["taken"]:
        qs = qs.filter(taken=f["taken"] == "yes")
    if f["reason"]:
        qs = qs.filter(taken=False, refusals__has_key=f["reason"])
    return form, _ordered(qs, f["sort"], OPPORTUNITY_SORTS, "opened_at")


def with_legs(qs: QuerySet) -> QuerySet:
    orders = Order.objects.select_related("exchange").prefetch_related(
        Prefetch("fills", queryset=Fill.objects.order_by("at", "id"))
    )
    return qs.select_related(
        "opportunity__market",
        "opportunity__buy_exchange",
        "opportunity__sell_exchange",
        "requested_by",
    ).prefetch_related(Prefetch("orders", queryset=orders), "events")


def filtered_trades(data) -> tuple[TradeFilter, QuerySet]:
    """Return the bound filter form and the trades it selects, with their legs and fills."""
    form = TradeFilter(data)
    fees = Order.objects.filter(trade=OuterRef("pk")).values("trade").annotate(s=Sum("fee"))
    qs = with_legs(Trade.objects.annotate(fees_total=Subquery(fees.values("s"))))
    if not form.is_valid():
        return form, qs.none()
    f = form.cleaned_data
    if f["market"]:
        qs = qs.filter(opportunity__market=f["market"])
    if f["venue"]:
        qs = qs.filter(
            Q(opportunity__buy_exchange=f["venue"]) | Q(opportunity__sell_exchange=f["venue"])
        )
    if f["trade"]:
        qs = qs.filter(pk=f["trade"])
    if f["state"]:
        qs = qs.filter(state=f["state"])
    if f["mode"]:
        qs = qs.filter(mode=f["mode"])
    qs = _in_days(qs, "created_at", f["since"], f["until"])
    return form, _ordered(qs, f["sort"], TRADE_SORTS, "created_at")
