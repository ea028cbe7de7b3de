"""The trade history page and the dashboard's recent trades."""

from django.core.paginator import Paginator

from arbsite.access import VIEW, desk_view
from arbsite.pages.desk import render_page
from trading.history import filtered_trades
from trading.models import Trade

PAGE_SIZE = 25
RECENT_TRADES = 10


@desk_view
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
