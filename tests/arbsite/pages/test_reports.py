"""The reports page: its figures and charts, streamed CSV, background CSV/Excel exports with
progress, and who may download them."""

import csv
import html as html_lib
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from openpyxl import load_workbook

from arbsite.roles import ADMINISTRATOR, RISK_MANAGER, TRADER, VIEWER
from tests.factories import desk_user_without_trades
from trading import tasks
from trading.models import Export, Fill
from trading.reports import exports

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=2)


@pytest.fixture
def viewer(client, user_with_role):
    user = user_with_role(VIEWER)
    client.force_login(user)
    return user


@pytest.fixture
def built_in_process(monkeypatch):
    """Build exports synchronously, as the eager embedded default does, on any broker."""
    monkeypatch.setattr(tasks.build_export, "delay", lambda pk: exports.build(pk))


def _query(day, **extra) -> str:
    params = {"period": "custom", "since": day.isoformat(), "until": day.isoformat(), **extra}
    return "&".join(f"{k}={v}" for k, v in params.items())


def _post_export(client, day, django_capture_on_commit_callbacks, **fields):
    data = {"period": "custom", "since": day.isoformat(), "until": day.isoformat(), **fields}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/reports/exports/", data)
    assert response.status_code == 302
    return Export.objects.latest("pk")


@pytest.mark.parametrize("role", [VIEWER, TRADER, RISK_MANAGER, ADMINISTRATOR])
def test_every_desk_role_reads_the_reports_page(client, user_with_role, role, history, day):
    client.force_login(user_with_role(role))
    since = day.isoformat()

    response = client.get(f"/reports/?period=custom&since={since}&until={since}")

    assert response.status_code == 200
    html = response.content.decode()
    assert "2.6746" in html
    assert 'id="report-data"' in html


def test_the_page_carries_chart_data_in_an_attribute_and_no_inline_script(
    client, user_with_role, history, day
):
    client.force_login(user_with_role(VIEWER))
    since = day.isoformat()

    html = client.get(f"/reports/?period=custom&since={since}&until={since}").content.decode()

    # Not a json_script block: htmx removes <script> elements from the fragments it swaps in.
    found = re.search(r'id="report-data" hidden data-chart="([^"]*)"', html)[1]
    data = json.loads(html_lib.unescape(found))
    assert data["cumulative_net"] == [2.6746]
    assert data["opportunities_by_hour"][2] == 2
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag
    assert "js/reports.js" in html


def test_htmx_gets_only_the_results_fragment(client, user_with_role):
    client.force_login(user_with_role(VIEWER))

    response = client.get("/reports/?period=30d", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html


def test_an_invalid_custom_period_asks_for_a_fix(client, user_with_role):
    client.force_login(user_with_role(VIEWER))

    response = client.get("/reports/?period=custom&since=2026-02-10&until=2026-02-01")

    assert response.status_code == 200
    assert "Fix the filter above" in response.content.decode()


def test_anonymous_users_go_to_the_login_page(client):
    assert client.get("/reports/").status_code == 302


def test_streamed_csv_holds_exactly_the_filtered_trades_legs_and_fills(
    client, viewer, history, day
):
    response = client.get(f"/reports/trades.csv?{_query(day, mode='paper')}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    paper = [history["a"].pk, history["b"].pk, history["failed"].pk]
    assert sorted({int(r["trade"]) for r in rows}) == sorted(paper)
    fills = Fill.objects.filter(order__trade__in=paper)
    assert sorted(int(r["fill"]) for r in rows if r["fill"]) == sorted(f.pk for f in fills)
    hedge = next(r for r in rows if r["purpose"] == "hedge")
    assert (hedge["side"], Decimal(hedge["fill_price"])) == ("sell", Decimal("100.5"))
    assert Decimal(hedge["realised_net_profit"]) == Decimal("1.0985")
    failed = next(r for r in rows if int(r["trade"]) == history["failed"].pk)
    assert (failed["order"], failed["fill"]) == ("", "")


def test_a_large_export_is_sent_to_the_background(client, viewer, history, day, monkeypatch):
    monkeypatch.setattr(exports, "STREAM_LIMIT", 1)

    response = client.get(f"/reports/trades.csv?{_query(day)}")

    assert response.status_code == 302


def test_background_xlsx_export_equals_the_filtered_rows(
    client, viewer, history, day, built_in_process, django_capture_on_commit_callbacks
):
    export = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="trades", format="xlsx",
        market="ETH-USD",
    )  # fmt: skip

    export.refresh_from_db()
    assert (export.state, export.progress, export.user) == ("done", 100, viewer)
    response = client.get(f"/reports/exports/{export.pk}/file")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Trades"]
    header, *rows = list(sheet.values)
    assert header == tuple(exports.TRADE_HEADER)
    assert len(rows) == export.rows == 2  # C's two legs, one fill each
    record = dict(zip(header, rows[0], strict=True))
    assert record["trade"] == history["c"].pk
    assert Decimal(str(record["realised_net_profit"])) == Decimal("-0.1199")


def test_background_summary_csv_carries_the_report_figures(
    client, viewer, history, day, built_in_process, django_capture_on_commit_callbacks
):
    export = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="summary", format="csv"
    )

    export.refresh_from_db()
    rows = list(csv.DictReader(io.StringIO(export.file.open("rb").read().decode())))
    figures = {(r["section"], r["key"], r["figure"]): r["value"] for r in rows}
    assert Decimal(figures[("total", "", "net_profit")]) == Decimal("2.6746")
    assert Decimal(figures[("total", "", "fees")]) == Decimal("0.7254")
    assert figures[("refusals", "max notional", "count")] == "5"
    assert Decimal(figures[("opportunities", "", "capture_ratio_pct")]) == Decimal("26.75")


def test_the_progress_row_polls_until_the_export_is_done(client, viewer):
    export = Export.objects.create(
        user=viewer, kind="trades", format="csv", expires_at=timezone.now() + timedelta(hours=1)
    )
    Export.objects.filter(pk=export.pk).update(state="running", progress=40)

    html = client.get(f"/reports/exports/{export.pk}/").content.decode()

    assert 'hx-trigger="every 1s"' in html
    assert 'value="40"' in html


def test_a_viewer_cannot_see_or_download_another_users_export(
    client,
    viewer,
    user_with_role,
    history,
    day,
    built_in_process,
    django_capture_on_commit_callbacks,
):
    export = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="trades", format="csv"
    )
    client.force_login(user_with_role(VIEWER))

    assert client.get(f"/reports/exports/{export.pk}/file").status_code == 404
    assert client.get(f"/reports/exports/{export.pk}/").status_code == 404
    assert f"export-{export.pk}" not in client.get("/reports/").content.decode()


def test_an_expired_export_link_is_refused(
    client, viewer, history, day, built_in_process, django_capture_on_commit_callbacks
):
    export = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="trades", format="csv"
    )
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get(f"/reports/exports/{export.pk}/file").status_code == 410


def test_the_daily_summary_is_downloadable_by_every_desk_role(client, viewer, history, day):
    export = exports.daily_summary(day)

    response = client.get(f"/reports/exports/{export.pk}/file")

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Summary"]
    assert ("total", None, "closed", 3) in list(sheet.values)  # an empty cell reads as None


def test_a_desk_user_who_may_not_see_trades_reads_the_totals_but_no_trade_rows(
    client, history, day, django_capture_on_commit_callbacks
):
    client.force_login(desk_user_without_trades())

    page = client.get(f"/reports/?{_query(day)}")
    streamed = client.get(f"/reports/trades.csv?{_query(day)}")
    data = {"period": "custom", "since": day.isoformat(), "until": day.isoformat()}
    exported = client.post("/reports/exports/", {**data, "kind": "trades", "format": "csv"})
    summary = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="summary", format="csv"
    )

    assert page.status_code == 200
    assert "trades.csv" not in page.content.decode()
    assert 'value="trades"' not in page.content.decode()
    assert (streamed.status_code, exported.status_code) == (403, 403)
    assert list(Export.objects.all()) == [summary]  # the totals stay theirs to export


def test_a_trades_export_is_not_downloaded_by_its_owner_once_trades_are_hidden(
    client, viewer, history, day, django_capture_on_commit_callbacks
):
    user = viewer
    export = _post_export(
        client, day, django_capture_on_commit_callbacks, kind="trades", format="csv"
    )
    user.groups.clear()
    user.user_permissions.add(Permission.objects.get(codename="view_desk"))

    response = client.get(f"/reports/exports/{export.pk}/file")

    assert response.status_code == 403


def test_a_bad_export_request_is_refused(client, viewer, day):
    response = client.post("/reports/exports/", {"period": "7d", "kind": "x", "format": "csv"})

    assert response.status_code == 400
    assert not Export.objects.exists()


def test_a_posted_export_is_built_only_once_its_row_is_committed(
    client, viewer, history, day, built_in_process, django_capture_on_commit_callbacks
):
    data = {"period": "custom", "since": day.isoformat(), "until": day.isoformat()}
    with django_capture_on_commit_callbacks() as callbacks:
        client.post("/reports/exports/", {**data, "kind": "trades", "format": "csv"})
    export = Export.objects.latest("pk")
    assert export.state == "pending"

    for callback in callbacks:
        callback()

    export.refresh_from_db()
    assert (export.state, export.rows) == ("done", 8)  # 7 fills and the failed trade's blank row


def test_the_page_shows_the_performance_figures_of_the_period(client, viewer):
    from tests.trading.reports.test_performance import SCRIPT, START, closed_trades

    closed_trades(SCRIPT)
    since = START.date().isoformat()

    html = client.get(f"/reports/?period=custom&since={since}&until={since}").content.decode()

    figures = re.search(r'<ul class="figures" id="performance-figures">(.*?)</ul>', html, re.S)
    text = re.sub(r"<[^>]+>", "", figures.group(1))
    assert "Maximum drawdown 7.0000" in text
    assert "2026-11-02 09:02:00 UTC to 2026-11-02 09:03:00 UTC" in text
    assert "Profit factor 1.10" in text and "Expectancy per trade 0.2000" in text
    assert "Fees of gross 71.43 %" in text
    assert '<table id="holding">' in html and "No inventory with a price." in html  # no ledger
