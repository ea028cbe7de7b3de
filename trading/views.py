"""Opportunities, trades and reports pages, manual execution, and their live partial contexts."""

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from arbsite.access import desk_view, require_permission
from arbsite.live import OPERATE, VIEW, render_page
from markets.models import Exchange, Market
from portfolio.models import Mode

from .models import Fill, Opportunity, Order, Trade

PAGE_SIZE = 25
OPEN_ON_DASHBOARD = 50
RECENT_TRADES = 10
OPPORTUNITY_SORTS = {
    "opened": "opened_at",
    "net": "net_profit",
    "bps": "net_bps",
    "peak": "peak_net_profit",
    "size": "size",
}
TRADE_SORTS = {"created": "created_at", "pnl": "realised_net_profit", "size": "requested_size"}


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
    since = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To (UTC)", widget=forms.DateInput({"type": "date"})
    )
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
    since = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To (UTC)", widget=forms.DateInput({"type": "date"})
    )
    trade = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    sort = forms.ChoiceField(choices=_sort_choices(TRADE_SORTS), required=False)


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _in_days(qs: QuerySet, field: str, since, until) -> QuerySet:
    if since:
        qs = qs.filter(**{f"{field}__gte": _day_start(since)})
    if until:
        qs = qs.filter(**{f"{field}__lt": _day_start(until) + timedelta(days=1)})
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


@desk_view
def opportunities(request):
    form, qs = filtered_opportunities(request.GET)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "topics": ["desk"]}
    return render_page(request, "opportunities.html", context, fragment="results")


@desk_view
def opportunity_detail(request, pk: int):
    opportunity = get_object_or_404(
        Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange"), pk=pk
    )
    trades = _with_legs(Trade.objects.filter(opportunity=opportunity))
    context = {
        "opportunity": opportunity,
        "trades": trades,
        "refusals": sorted(opportunity.refusals.items(), key=lambda item: -item[1]),
        "age": timezone.now() - opportunity.opened_at,
        "topics": ["desk"],
    }
    return render_page(request, "opportunity_detail.html", context)


def _with_legs(qs: QuerySet) -> QuerySet:
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
    qs = _with_legs(Trade.objects.annotate(fees_total=Subquery(fees.values("s"))))
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


@desk_view
def trades(request):
    form, qs = filtered_trades(request.GET)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "topics": ["desk"]}
    return render_page(request, "trades.html", context, fragment="results")


@require_permission("arbsite.operate_desk")
@require_http_methods(["GET", "POST"])
def execute(request, pk: int):
    """Confirm, then ask execution to take an open opportunity by hand."""
    opportunity = get_object_or_404(
        Opportunity.objects.select_related("market", "buy_exchange", "sell_exchange"), pk=pk
    )
    if request.method == "GET":
        return render_page(request, "execute_confirm.html", {"opportunity": opportunity})
    if opportunity.state != Opportunity.State.OPEN:
        messages.error(request, f"Opportunity {pk} has closed; nothing was executed.")
        return redirect("opportunity_detail", pk=pk)
    from trading.services import request_execution

    request_execution(opportunity, user=request.user)
    _audit(request, opportunity)
    messages.success(request, f"Execution of opportunity {pk} requested.")
    return redirect("opportunity_detail", pk=pk)


def _audit(request, opportunity: Opportunity) -> None:
    from arbsite.audit import record

    after = {"market": opportunity.market.symbol, "net_profit": str(opportunity.net_profit)}
    record(
        "opportunity executed by hand",
        user=request.user,
        request=request,
        obj=opportunity,
        after=after,
    )


def open_opportunities_context(key: str = "", *, audience: str = VIEW) -> dict:
    """The dashboard's open opportunities, newest first, with the execute control for Traders."""
    rows = (
        Opportunity.objects.filter(state=Opportunity.State.OPEN)
        .select_related("market", "buy_exchange", "sell_exchange")
        .order_by("-opened_at")[:OPEN_ON_DASHBOARD]
    )
    return {"open_opportunities": list(rows), "can_operate": audience == OPERATE}


def recent_trades_context(key: str = "", *, audience: str = VIEW) -> dict:
    rows = Trade.objects.select_related(
        "opportunity__market", "opportunity__buy_exchange", "opportunity__sell_exchange"
    ).order_by("-created_at")[:RECENT_TRADES]
    return {"recent_trades": list(rows)}
