"""Exports: trades with their legs and fills, and the report summary, as CSV or Excel files."""

import csv
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files import File
from django.db.models import Q, QuerySet
from django.utils import timezone
from openpyxl import Workbook

from trading.models import Export
from trading.reports.figures import Report
from trading.reports.forms import ReportFilter
from trading.reports.queries import build_report, settled_trades

log = logging.getLogger(__name__)

# Trades up to this many stream straight to the browser as CSV; more go to a background export.
STREAM_LIMIT = 5_000
KEEP_FOR = timedelta(hours=24)
SUMMARY_KEPT_FOR = timedelta(days=7)
PROGRESS_EVERY = 5_000  # rows between progress writes

# One row per fill; an order without fills and a trade without orders get one row of blanks.
TRADE_FIELDS = [
    ("trade", "pk"),
    ("closed_at", "closed_at"),
    ("market", "opportunity__market__symbol"),
    ("buy_venue", "opportunity__buy_exchange__slug"),
    ("sell_venue", "opportunity__sell_exchange__slug"),
    ("mode", "mode"),
    ("state", "state"),
    ("requested_size", "requested_size"),
    ("expected_net_profit", "expected_net_profit"),
    ("realised_net_profit", "realised_net_profit"),
    ("order", "orders__id"),
    ("purpose", "orders__purpose"),
    ("order_venue", "orders__exchange__slug"),
    ("side", "orders__side"),
    ("limit_price", "orders__limit_price"),
    ("amount", "orders__amount"),
    ("filled_amount", "orders__filled_amount"),
    ("average_price", "orders__average_price"),
    ("order_fee", "orders__fee"),
    ("fill", "orders__fills__id"),
    ("fill_at", "orders__fills__at"),
    ("fill_price", "orders__fills__price"),
    ("fill_amount", "orders__fills__amount"),
    ("fill_fee", "orders__fills__fee"),
]
TRADE_HEADER = [name for name, _ in TRADE_FIELDS]
SUMMARY_HEADER = ["section", "key", "figure", "value"]
TRADE_FIGURES = [
    "closed",
    "failed",
    "wins",
    "win_rate",
    "volume",
    "gross_profit",
    "fees",
    "net_profit",
    "average",
    "worst",
    "best",
    "one_legged",
    "one_legged_cost",
]


def trade_rows(trades: QuerySet) -> Iterator[tuple]:
    """The export rows of `trades` in closing order: one query, read in chunks."""
    rows = trades.order_by("closed_at", "pk", "orders__id", "orders__fills__id").values_list(
        *[path for _, path in TRADE_FIELDS]
    )
    return rows.iterator(chunk_size=5_000)


def summary_rows(report: Report) -> Iterator[tuple]:
    """The report as (section, key, figure, value) rows."""
    p = report.period
    yield ("period", "", "first_day", p.first.isoformat())
    yield ("period", "", "last_day", p.last.isoformat())
    sections = [
        ("total", {"": report.total}),
        ("day", {d.isoformat(): f for d, f in report.by_day.items()}),
        ("market", report.by_market),
        ("pair", {f"{buy} -> {sell}": f for (buy, sell), f in report.by_pair.items()}),
    ]
    for section, groups in sections:
        for key, figures in groups.items():
            for name in TRADE_FIGURES:
                yield (section, key, name, getattr(figures, name))
    o = report.opportunities
    for name in ("seen", "taken", "refused", "closed", "peak_net_profit", "peak_max"):
        yield ("opportunities", "", name, getattr(o, name))
    average = o.average_duration
    yield ("opportunities", "", "average_duration_s", average.total_seconds() if average else None)
    yield ("opportunities", "", "capture_ratio_pct", report.capture_ratio)
    for reason, count in sorted(o.refusals.items()):
        yield ("refusals", reason, "count", count)
    for label, count in o.durations.items():
        yield ("durations", label, "count", count)


# A text cell starting so is run as a formula by spreadsheets (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value):
    """`value`, quoted when it is text a spreadsheet would run; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):  # at the stored scale, never exponent: 0E-12 is 0.000000000000
        return f"{value:f}"
    return _text(value)


def csv_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    """CSV text line by line, for a StreamingHttpResponse or a file."""

    class Line:
        def write(self, text: str) -> str:
            return text

    writer = csv.writer(Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_cell(v) for v in row])


def _xlsx_cell(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal):
        # Exact text, the CSV's: openpyxl writes a Decimal as "%.16g" (16 digits, exponent form
        # for small ones) and a spreadsheet number is a double. Text even when a double would
        # hold it: a column of numbers and text mixed would SUM the numbers alone, silently.
        return f"{value:f}"
    return _text(value)


def write_xlsx(path: Path, sheets: list[tuple[str, list[str], Iterable[tuple]]]) -> None:
    """Write each (title, header, rows) as a sheet, streaming (openpyxl write-only mode)."""
    workbook = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append([_xlsx_cell(v) for v in row])
    workbook.save(path)


def create_export(*, user: AbstractBaseUser, kind: str, fmt: str, form: ReportFilter) -> Export:
    """Record a pending export of the valid `form`'s period, its dates fixed now; the caller
    enqueues its build (trading.tasks.build_export) once the row is committed."""
    period, filters = form.period_and_filters()
    params = {
        "period": "custom",
        "since": period.first.isoformat(),
        "until": period.last.isoformat(),
        "market": filters.market.symbol if filters.market else "",
        "venue": filters.venue.slug if filters.venue else "",
        "mode": filters.mode,
    }
    return Export.objects.create(
        user=user, kind=kind, format=fmt, params=params, expires_at=timezone.now() + KEEP_FOR
    )


def _counting(rows: Iterable[tuple], total: int, report: Callable[[int, int], None]):
    for done, row in enumerate(rows, 1):
        yield row
        if done % PROGRESS_EVERY == 0:
            report(done, total)


def build(export_id: int) -> bool:
    """Build a pending export's file, recording progress; False if another run claimed it."""
    if not Export.objects.filter(pk=export_id, state=Export.State.PENDING).update(
        state=Export.State.RUNNING
    ):
        return False
    export = Export.objects.get(pk=export_id)
    try:
        _build(export)
    except Exception as exc:
        log.exception("export %s failed", export_id)
        Export.objects.filter(pk=export_id).update(state=Export.State.FAILED, error=str(exc)[:200])
        raise
    return True


def _build(export: Export) -> None:
    form = ReportFilter(export.params)
    if not form.is_valid():
        raise ValueError(f"export parameters are not valid: {form.errors.as_text()}")
    period, filters = form.period_and_filters()
    if export.kind == Export.Kind.TRADES:
        trades = settled_trades(period, filters)
        total = trades.count() or 1

        def progress(done: int, _total: int) -> None:
            pct = min(99, done * 100 // max(total * 3, 1))  # about three rows per trade
            Export.objects.filter(pk=export.pk).update(progress=pct)

        header, rows, title = TRADE_HEADER, _counting(trade_rows(trades), total, progress), "Trades"
    else:
        header, rows, title = SUMMARY_HEADER, summary_rows(build_report(period, filters)), "Summary"
    name = f"{export.kind}-{period.first:%Y%m%d}-{period.last:%Y%m%d}-{export.pk}.{export.format}"
    counted = _Counted(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if export.format == Export.Format.XLSX:
            write_xlsx(path, [(title, header, counted)])
        else:
            with path.open("w", newline="", encoding="utf-8") as out:
                out.writelines(csv_lines(header, counted))
        with path.open("rb") as content:
            export.file.save(name, File(content), save=False)
    Export.objects.filter(pk=export.pk).update(
        state=Export.State.DONE, progress=100, rows=counted.n, file=export.file.name
    )


class _Counted:
    """Iterate `rows`, counting them."""

    def __init__(self, rows: Iterable[tuple]) -> None:
        self.rows, self.n = rows, 0

    def __iter__(self) -> Iterator[tuple]:
        for row in self.rows:
            self.n += 1
            yield row


def daily_summary(day: date | None = None) -> Export:
    """The desk's summary of yesterday (UTC) as Excel, kept for every desk role a week."""
    day = day or timezone.now().date() - timedelta(days=1)
    params = {"period": "custom", "since": day.isoformat(), "until": day.isoformat()}
    export = Export.objects.create(
        user=None,
        kind=Export.Kind.SUMMARY,
        format=Export.Format.XLSX,
        params=params,
        expires_at=timezone.now() + SUMMARY_KEPT_FOR,
    )
    build(export.pk)
    export.refresh_from_db()
    return export


def visible_exports(user: AbstractBaseUser) -> QuerySet:
    """The exports `user` may download: their own and the desk's scheduled summaries."""
    return Export.objects.filter(Q(user=user) | Q(user__isnull=True), expires_at__gt=timezone.now())
