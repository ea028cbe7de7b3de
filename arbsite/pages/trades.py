"""The trade history page and the dashboard's recent trades."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from arbsite.access import OPERATE_PERM, VIEW, desk_view, require_permission, trades_view
from arbsite.audit import record
from arbsite.pages.desk import render_page
from markets.money import plain
from trading.execution.settlement import imbalance
from trading.execution.trades import keep_residual
from trading.history import filtered_trades
from trading.models import Trade

PAGE_SIZE = 25
RECENT_TRADES = 10


@desk_view
@trades_view
def trades(request):
    form, qs = filtered_trades(request.GET)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "topics": ["desk"]}
    return render_page(request, "trades.html", context, fragment="results")


def recent_trades_context(key: str = "", *, audience: str = VIEW) -> dict:
    rows = Trade.objects.select_related(
        "opportunity__market", "opportunity__buy_exchange", "opportunity__sell_exchange"
    ).order_by("-created_at")[:RECENT_TRADES]
    return {"recent_trades": list(rows)}


class ResidualForm(forms.Form):
    note = forms.CharField(
        label="What is done with it",
        max_length=150,
        help_text="For the trade's history: e.g. sold by hand on the venue, or kept as inventory.",
    )


@require_permission(OPERATE_PERM)
@require_http_methods(["GET", "POST"])
def residual(request, pk: int):
    """Confirm, then close a partially filled trade keeping its residual as inventory."""
    trade = get_object_or_404(
        Trade.objects.select_related("opportunity__market").prefetch_related("orders__exchange"),
        pk=pk,
    )
    form = ResidualForm(request.POST or None)
    back = f"{reverse('trades')}?{urlencode({'trade': trade.pk})}"
    if request.method == "POST" and form.is_valid():
        note = form.cleaned_data["note"]
        refused = keep_residual(trade, note=note, by=request.user.get_username())
        if not refused:
            kept = f"{plain(trade.residual)} {trade.opportunity.market.base}"
            record(
                "trade residual kept",
                user=request.user,
                request=request,
                obj=trade,
                after={"residual": kept, "note": note},
            )
            messages.success(request, f"Trade {pk} closed with {kept} kept as inventory.")
            return redirect(back)
        form.add_error(None, refused)
    context = {"trade": trade, "form": form, "residual": imbalance(trade), "back": back}
    return render_page(request, "trade_residual.html", context)
