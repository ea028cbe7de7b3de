"""The reports page, its exports (streamed or built in the background) and their downloads."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from arbsite.access import TRADES_PERM, desk_view, trades_view
from arbsite.pages.desk import render_page
from trading.models import Export
from trading.reports import exports
from trading.reports.charts import chart_data
from trading.reports.forms import ReportFilter
from trading.reports.queries import build_report, holding_of, performance_of, settled_trades
from trading.tasks import build_export

RECENT_EXPORTS = 10


def _query(data) -> str:
    """The filter part of `data` as a query string, for links and redirects."""
    keys = ("period", "since", "until", "market", "venue", "mode")
    return urlencode({k: data[k] for k in keys if data.get(k)})


@desk_view
@require_GET
def reports(request):
    form = ReportFilter(request.GET)
    report = build_report(*form.period_and_filters()) if form.is_valid() else None
    performance = performance_of(report) if report else None
    holdings, unpriced = holding_of(*form.period_and_filters()) if report else ([], [])
    # Settled trades in the period: exactly the rows settled_trades() exports.
    trades = report.total.closed + report.total.failed if report else 0
    context = {
        "form": form,
        "report": report,
        "performance": performance,
        "holdings": holdings,
        "unpriced": unpriced,
        # In an attribute, not a json_script block: htmx drops every <script> from a swapped
        # fragment (allowScriptTags is off for the CSP), so a filter change would lose it.
        "chart_json": json.dumps(chart_data(report) if report else None),
        "trade_count": trades,
        "streamable": 0 < trades <= exports.STREAM_LIMIT,
        "query": _query(request.GET),
        "exports": exports.visible_exports(request.user)[:RECENT_EXPORTS],
        "topics": ["desk"],
    }
    return render_page(request, "reports.html", context, fragment="results")


@desk_view
@trades_view
@require_GET
def trades_csv(request):
    """Stream the filtered trades as CSV when they are few; otherwise send to the export form."""
    form = ReportFilter(request.GET)
    if not form.is_valid():
        return HttpResponse("The filter is not valid.", status=400)
    period, filters = form.period_and_filters()
    trades = settled_trades(period, filters)
    if trades.count() > exports.STREAM_LIMIT:
        messages.info(request, "That is too many trades to stream: export it in the background.")
        return redirect(f"{reverse('reports')}?{_query(request.GET)}")
    response = StreamingHttpResponse(
        exports.csv_lines(exports.TRADE_HEADER, exports.trade_rows(trades)),
        content_type="text/csv; charset=utf-8",
    )
    name = f"trades-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@desk_view
@require_POST
def create_export(request):
    """Record an export of the posted filter and build it in the background."""
    form = ReportFilter(request.POST)
    kind, fmt = request.POST.get("kind"), request.POST.get("format")
    if not form.is_valid() or kind not in Export.Kind.values or fmt not in Export.Format.values:
        return HttpResponse("The export request is not valid.", status=400)
    _may_read(request, kind)
    export = exports.create_export(user=request.user, kind=kind, fmt=fmt, form=form)
    build_export.delay_on_commit(export.pk)
    if request.htmx:
        return render(request, "reports.html#export", {"export": export})
    messages.success(request, f"Export {export.pk} started; it appears below when ready.")
    return redirect(f"{reverse('reports')}?{_query(request.POST)}")


def _may_read(request, kind: str) -> None:
    """An export of trades lists them one by one: for those who may see trades (403 otherwise);
    a summary holds only the totals the reports page shows."""
    if kind == Export.Kind.TRADES and not request.user.has_perm(TRADES_PERM):
        raise PermissionDenied(f"Your role does not include {TRADES_PERM}.")


def _visible(request, pk: int) -> Export:
    """The user's own export or a desk summary; anyone else's is 404, an expired one 410."""
    export = get_object_or_404(Export, pk=pk)
    if export.user_id is not None and export.user_id != request.user.pk:
        raise Http404("No such export.")
    return export


@desk_view
@require_GET
def export_status(request, pk: int):
    """The export's row with its progress; htmx polls it every second until it is done."""
    return render(request, "reports.html#export", {"export": _visible(request, pk)})


@desk_view
@require_GET
def export_download(request, pk: int):
    export = _visible(request, pk)
    _may_read(request, export.kind)
    if export.is_expired:
        return HttpResponse("This export has expired; export it again.", status=410)
    if export.state != Export.State.DONE or not export.file:
        raise Http404("The export is not ready.")
    name = export.file.name.rsplit("/", 1)[-1]
    return FileResponse(export.file.open("rb"), as_attachment=True, filename=name)
