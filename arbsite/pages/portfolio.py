"""The portfolio page (balances, exposure, PnL) and the PnL and balances partial contexts."""

from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from arbsite.access import VIEW, desk_view
from arbsite.pages.desk import render_page
from markets.bookcache import BookCacheUnavailable
from markets.models import Exchange
from portfolio.models import Mode
from portfolio.selectors import exposure
from trading.selectors import open_imbalances, realised_pnl, realised_pnl_today


@desk_view
def portfolio(request):
    context = {**balances_context(), **pnl_context(), "topics": ["desk", "portfolio"]}
    return render_page(request, "portfolio.html", context)


def pnl_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Realised PnL per mode and quote currency: today (UTC) and since the desk began."""
    return {
        "pnl": [
            {
                "mode": label,
                "today": sorted(realised_pnl_today(mode=mode).items()),
                "total": sorted(realised_pnl(mode=mode).items()),
            }
            for mode, label in Mode.choices
        ],
        "pnl_day": timezone.now().date(),
    }


def balances_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Balances and exposure per venue and asset in each mode, and totals per quote currency.

    Exposure is valued from the book cache: while it does not answer, the page says so instead.
    """
    names = dict(Exchange.objects.values_list("slug", "name"))
    modes = []
    for mode, label in Mode.choices:
        try:
            rows = exposure(mode=mode, imbalances=open_imbalances(mode=mode))
        except BookCacheUnavailable:
            return {"balances": [], "books_unavailable": True}
        totals: dict[str, Decimal] = defaultdict(Decimal)
        unpriced = False
        for row in rows:
            if row.value is None:
                unpriced = True
            else:
                totals[row.quote] += row.value
        modes.append(
            {
                "mode": label,
                "rows": [{"row": row, "venue": names.get(row.venue, row.venue)} for row in rows],
                "totals": sorted(totals.items()),
                "unpriced": unpriced,
            }
        )
    return {"balances": modes}
