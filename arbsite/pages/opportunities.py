"""The opportunities pages: history, one opportunity's detail, execution by hand, the open list."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from arbsite.access import OPERATE, TRADES_PERM, VIEW, desk_view, require_permission
from arbsite.audit import record
from arbsite.pages import shared
from arbsite.pages.desk import render_page
from trading.history import filtered_opportunities, with_legs
from trading.models import Opportunity, Trade
from trading.tasks import enqueue_execution

PAGE_SIZE = 25
OPEN_ON_DASHBOARD = 50


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
    taken = Trade.objects.filter(opportunity=opportunity)
    sees_trades = request.user.has_perm(TRADES_PERM)
    trades = list(with_legs(taken)) if sees_trades else []
    context = {
        "opportunity": opportunity,
        # Whether it was taken is the opportunity's own story; the trade's legs are trades.
        "taken": bool(trades) if sees_trades else taken.exists(),
        "trades": trades,
        "sees_trades": sees_trades,
        "refusals": sorted(opportunity.refusals.items(), key=lambda item: -item[1]),
        "age": timezone.now() - opportunity.opened_at,
        "topics": ["desk"],
    }
    return render_page(request, "opportunity_detail.html", context)


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
    if not enqueue_execution(opportunity.pk, user=request.user):
        messages.error(
            request,
            f"Opportunity {pk} was not executed: the execution queue (Celery's broker) cannot "
            "be reached. Nothing was placed; check that Redis and the workers are running.",
        )
        return redirect("opportunity_detail", pk=pk)
    _audit(request, opportunity)
    messages.success(request, f"Execution of opportunity {pk} requested.")
    return redirect("opportunity_detail", pk=pk)


def _audit(request, opportunity: Opportunity) -> None:
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
    rows = shared.open_opportunities()[:OPEN_ON_DASHBOARD]
    return {"open_opportunities": rows, "can_operate": audience == OPERATE}
