"""Exports built directly: trade and summary rows, CSV cells, the claim, failures, who sees."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from markets.models import Exchange
from tests.factories import UserFactory
from trading import tasks
from trading.models import Export
from trading.reports import exports
from trading.reports.figures import Filters, Period
from trading.reports.forms import ReportFilter
from trading.reports.queries import build_report, settled_trades

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=2)


def _export(day, *, params: dict | None = None, **fields) -> Export:
    """A pending trades CSV export of `day`, or of `params` when given."""
    params = params or {"period": "custom", "since": str(day), "until": str(day)}
    fields = {"kind": "trades", "format": "csv", **fields}
    return Export.objects.create(
        params=params, expires_at=timezone.now() + exports.KEEP_FOR, **fields
    )


def test_trade_rows_are_one_per_fill_in_closing_order_with_blanks_for_a_failed_trade(history, day):
    rows = list(exports.trade_rows(settled_trades(Period(day, day), Filters())))

    order = ["a", "a", "b", "b", "b", "failed", "c", "c"]
    assert [row[0] for row in rows] == [history[name].pk for name in order]
    failed = dict(zip(exports.TRADE_HEADER, rows[5], strict=True))
    assert (failed["order"], failed["fill"], failed["realised_net_profit"]) == (None, None, None)


def test_summary_rows_carry_the_report_figures(history, day):
    report = build_report(Period(day, day), Filters(), use_rollups=False)

    figures = {(s, k, f): v for s, k, f, v in exports.summary_rows(report)}

    assert figures[("period", "", "first_day")] == day.isoformat()
    assert figures[("total", "", "net_profit")] == Decimal("2.6746")
    assert figures[("market", "ETH-USD", "closed")] == 1
    assert figures[("pair", "Buyv -> Sellv", "one_legged")] == 1
    assert figures[("opportunities", "", "average_duration_s")] == pytest.approx(953.5 / 6)
    assert figures[("refusals", "kill switch", "count")] == 1


def test_csv_cells_write_none_as_blank_and_times_in_utc():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    lines = list(exports.csv_lines(["a", "b", "c"], [(None, at, Decimal("1.5"))]))

    assert lines == ["a,b,c\r\n", ",2026-01-02T03:04:05+00:00,1.5\r\n"]


def test_create_export_fixes_a_preset_period_to_its_dates_and_leaves_the_build_to_the_caller(
    django_capture_on_commit_callbacks,
):
    form = ReportFilter({"period": "7d", "mode": "live"})
    assert form.is_valid()
    today = timezone.now().date()

    with django_capture_on_commit_callbacks() as callbacks:
        export = exports.create_export(user=UserFactory(), kind="trades", fmt="csv", form=form)

    assert export.state == Export.State.PENDING
    assert export.params == {
        "period": "custom",
        "since": (today - timedelta(days=6)).isoformat(),
        "until": today.isoformat(),
        "market": "",
        "venue": "",
        "mode": "live",
    }
    assert callbacks == []


def test_build_writes_the_file_of_the_filtered_trades_and_marks_the_export_done(history, day):
    params = {"period": "custom", "since": str(day), "until": str(day), "mode": "live"}
    export = _export(day, params=params)

    assert exports.build(export.pk) is True

    export.refresh_from_db()
    rows = list(csv.DictReader(io.StringIO(export.file.open("rb").read().decode())))
    assert (export.state, export.progress, export.rows) == ("done", 100, 2)
    assert {int(r["trade"]) for r in rows} == {history["c"].pk}
    assert export.file.name.endswith(f"trades-{day:%Y%m%d}-{day:%Y%m%d}-{export.pk}.csv")


def test_a_claimed_export_is_not_built_twice(history, day):
    export = _export(day)
    exports.build(export.pk)

    assert exports.build(export.pk) is False


def test_an_export_with_invalid_parameters_fails_and_records_why(day):
    export = _export(day, params={"period": "custom"})

    with pytest.raises(ValueError, match="not valid"):
        exports.build(export.pk)

    export.refresh_from_db()
    assert export.state == Export.State.FAILED
    assert "both dates" in export.error


def test_visible_exports_are_the_users_own_and_the_desk_summaries_until_they_expire(day):
    user, other = UserFactory(), UserFactory()
    own, summary = _export(day, user=user), _export(day, user=None, kind="summary")
    _export(day, user=other)
    expired = _export(day, user=user)
    Export.objects.filter(pk=expired.pk).update(expires_at=timezone.now())

    assert set(exports.visible_exports(user)) == {own, summary}


def test_the_daily_summary_task_exports_yesterday_as_excel_for_the_desk(history):
    yesterday = timezone.now().date() - timedelta(days=1)

    export = Export.objects.get(pk=tasks.daily_summary_export())

    assert (export.kind, export.format, export.user, export.state) == (
        "summary",
        "xlsx",
        None,
        "done",
    )
    assert export.params["since"] == export.params["until"] == yesterday.isoformat()


FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_csv_text_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted():
    row = (*FORMULAS, "plain", "a=b")

    lines = list(exports.csv_lines(["cell"] * len(row), [row]))

    cells = next(csv.reader(io.StringIO(lines[1])))
    assert cells == [f"'{text}" for text in FORMULAS] + ["plain", "a=b"]


def test_csv_numbers_stay_numbers_even_when_negative():
    lines = list(exports.csv_lines(["a", "b", "c"], [(Decimal("-1.5"), -3, 0.25)]))

    assert lines[1] == "-1.5,-3,0.25\r\n"


def test_excel_cells_are_never_formulas_and_negative_integers_stay_numbers(tmp_path):
    path = tmp_path / "cells.xlsx"
    row = (*FORMULAS, "plain", -3)

    exports.write_xlsx(path, [("Cells", ["cell"] * len(row), [row])])

    cells = next(load_workbook(path).active.iter_rows(min_row=2))
    assert [c.data_type for c in cells] == ["s"] * (len(FORMULAS) + 1) + ["n"]
    quoted = [f"'{text}".replace("\r", "\n") for text in FORMULAS]  # XML reads \r back as \n
    assert [c.value for c in cells] == [*quoted, "plain", -3]


MONEY = ["0", "0E-12", "0.00000100", "-0.000012345678", "1234567.891234567891", "-1.5"]


def test_excel_money_cells_are_the_exact_digits_never_rounded_nor_in_exponent_form(tmp_path):
    path = tmp_path / "money.xlsx"
    row = tuple(Decimal(text) for text in MONEY)

    exports.write_xlsx(path, [("Money", ["cell"] * len(row), [row])])

    cells = next(load_workbook(path).active.iter_rows(min_row=2))
    assert [c.value for c in cells] == [
        "0",
        "0.000000000000",
        "0.00000100",
        "-0.000012345678",
        "1234567.891234567891",
        "-1.5",
    ]
    _, csv_row = csv.reader(exports.csv_lines(["cell"] * len(row), [row]))
    assert [c.value for c in cells] == csv_row  # the same text as the CSV export


def test_a_venue_named_like_a_formula_exports_as_text_in_the_summary(tmp_path, history, day):
    Exchange.objects.filter(slug="buyv").update(name='=HYPERLINK("http://evil.example")')
    report = build_report(Period(day, day), Filters(), use_rollups=False)
    path = tmp_path / "summary.xlsx"

    exports.write_xlsx(path, [("Summary", exports.SUMMARY_HEADER, exports.summary_rows(report))])

    keys = [row[1] for row in load_workbook(path).active.iter_rows(min_row=2)]
    pairs = [cell for cell in keys if "HYPERLINK" in str(cell.value)]
    assert pairs and all(cell.data_type == "s" for cell in pairs)
    assert pairs[0].value.startswith("'=HYPERLINK")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.integers(), st.decimals(allow_nan=False)), max_size=5))
def test_no_csv_cell_reads_back_as_a_formula_and_numbers_read_back_as_written(row):
    lines = "".join(exports.csv_lines(["cell"] * len(row), [row]))

    cells = list(csv.reader(io.StringIO(lines, newline="")))[1:]
    read = cells[0] if cells else []
    for value, cell in zip(row, read, strict=True):
        if isinstance(value, str):
            assert not cell.startswith(exports.FORMULA_STARTS)
        elif isinstance(value, Decimal):  # the same number, in plain digits
            assert Decimal(cell) == value
            assert "E" not in cell
        else:
            assert cell == str(value)
