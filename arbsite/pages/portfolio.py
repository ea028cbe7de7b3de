"""The portfolio page (balances, exposure, PnL, reconciliation with the venues, inventory over
time), its partial contexts, and the Administrator's ledger adjustment."""

import json
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from arbsite.access import VIEW, desk_view, require_permission
from arbsite.audit import record
from arbsite.pages.desk import render_page
from markets.bookcache import BookCacheUnavailable
from markets.models import Exchange, Market
from portfolio.models import Account, Balance, Mode
from portfolio.reconciliation import beyond, drifts_of, latest
from portfolio.selectors import exposure, inventory_series
from portfolio.services import InsufficientBalance, adjust
from risk.models import RiskProfile
from trading.reconciliation import live_accounts, reconcile
from trading.selectors import open_imbalances, realised_pnl, realised_pnl_today

ADJUST = "portfolio.add_ledgerentry"


# The inventory chart's periods: how far back, and the step between two points.
PERIODS = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(minutes=15)),
    "7d": (timedelta(days=7), timedelta(hours=2)),
    "30d": (timedelta(days=30), timedelta(hours=6)),
}


@desk_view
def portfolio(request):
    context = {
        **balances_context(),
        **pnl_context(),
        **reconciliation_context(),
        **inventory_context(request.GET, default_mode=desk_mode()),
        "can_adjust": request.user.has_perm(ADJUST),
        "topics": ["desk", "portfolio"],
    }
    return render_page(request, "portfolio.html", context, fragment="inventory")


def desk_mode() -> str:
    """The mode the desk trades in: live while a live profile is active, else paper."""
    return Mode.LIVE if RiskProfile.objects.active(Mode.LIVE) else Mode.PAPER


def inventory_context(params, *, default_mode: str) -> dict:
    """The inventory chart: each venue's holding of the chosen asset over the chosen period,
    in the chosen mode (the desk's by default), as exact decimal text for the browser."""
    mode = params.get("mode") if params.get("mode") in Mode.values else default_mode
    period = params.get("period") if params.get("period") in PERIODS else "24h"
    held = Balance.objects.filter(account__mode=mode).values_list("asset", flat=True)
    assets = list(held.order_by("asset").distinct())
    bases = set(Market.objects.values_list("base", flat=True))
    asset = params.get("asset")
    if asset not in assets:
        asset = next((a for a in assets if a in bases), assets[0] if assets else "")
    back, step = PERIODS[period]
    end = timezone.now()
    series = inventory_series(mode=mode, asset=asset, start=end - back, end=end, step=step)
    names = dict(Exchange.objects.values_list("slug", "name"))
    venues = [{"slug": v, "name": names.get(v, v)} for v in series.amounts]
    return {
        "inventory": {
            "mode": mode,
            "mode_label": Mode(mode).label,
            "modes": Mode.choices,
            "period": period,
            "periods": list(PERIODS),
            "asset": asset,
            "assets": assets,
            "latest": [(v["name"], series.amounts[v["slug"]][-1]) for v in venues],
            "rows": [
                (at, [amounts[i] for amounts in series.amounts.values()])
                for i, at in enumerate(series.times)
            ],
            # A data attribute, not json_script: htmx drops every <script> of a swap.
            "chart_json": json.dumps(
                {
                    "asset": asset,
                    "venues": venues,
                    "times": [int(t.timestamp()) for t in series.times],
                    "amounts": {v: [f"{a:f}" for a in held] for v, held in series.amounts.items()},
                }
            ),
        }
    }


def reconciliation_context(key: str = "", *, audience: str = VIEW) -> dict:
    """Each live account's last reconciliation: per asset what the venue holds, what the ledger
    says and the drift (flagged past the live profile's tolerance), when, or why it failed."""
    profile = RiskProfile.objects.active(Mode.LIVE) or RiskProfile(mode=Mode.LIVE)
    within = timedelta(seconds=settings.RECONCILIATION_MAX_AGE_S)
    venues = []
    for account in live_accounts():
        last = latest(account)
        drifts = drifts_of(last) if last else []
        flagged = {d.asset for d in beyond(drifts, profile.drift_tolerance)}
        venues.append(
            {
                "account": account,
                "last": last,
                "stale": last is None or timezone.now() - last.at > within,
                "rows": [{"drift": d, "flagged": d.asset in flagged} for d in drifts],
            }
        )
    return {"reconciliations": venues, "reconciled_within_s": int(within.total_seconds())}


class AdjustmentForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=Account.objects.filter(mode=Mode.LIVE).select_related("exchange"),
        help_text="The live account whose ledger is adjusted.",
    )
    asset = forms.RegexField(
        regex=r"\A[A-Z0-9]{1,12}\Z",
        max_length=12,
        help_text="The asset code, as the ledger names it (USD, BTC).",
        error_messages={"invalid": "An asset code is capitals and digits, e.g. USD."},
    )
    amount = forms.DecimalField(
        max_digits=28,
        decimal_places=12,
        help_text="Signed: positive adds to the balance, negative takes from it.",
    )
    reason = forms.CharField(
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the drift was (a transfer, the venue's correction); kept in the audit.",
    )

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment of zero changes nothing.")
        return amount


@require_permission(ADJUST)
@require_http_methods(["GET", "POST"])
def adjustment(request):
    """GET: the form, prefilled from the reconciliation's link; POST: book it, audit it, and
    reconcile the account again so the page shows what is left."""
    form = AdjustmentForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        account = data["account"]
        try:
            entry = adjust(
                account=account, asset=data["asset"], amount=data["amount"], reason=data["reason"]
            )
        except InsufficientBalance as exc:
            form.add_error("amount", f"The balance cannot go below zero: {exc}")
        else:
            record(
                "ledger adjusted",
                user=request.user,
                request=request,
                obj=account,
                after={"asset": entry.asset, "amount": f"{entry.amount:f}", "reason": entry.note},
            )
            reconcile(account)
            messages.success(
                request, f"{account}: {entry.asset} adjusted by {entry.amount:f} ({entry.note})."
            )
            return redirect("portfolio")
    response = render_page(request, "portfolio_adjust.html", {"form": form})
    response.status_code = 400 if request.method == "POST" else 200
    return response


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
