"""``adc report``: the pharmacy reports, printed as a table and written as CSV, HTML (with SVG charts) or PDF.

``adc report NAME [--from DATE] [--to DATE] [--tz ZONE] [--cabinet ID] [--csv OUT] [--html OUT] [--pdf OUT]
[--json]`` with NAME one of cs-activity, discrepancies, overrides, expiring, par, dea-inventory, theft-loss. Dates
are whole local days in ``--tz`` (default UTC), both included; without ``--to`` the period runs to now, without
``--from`` it covers the 30 days before its end. Without ``--cabinet`` every cabinet in the store is reported.
Bad values print one line, ``adc: error: [report.bad_period] ...``, and exit non-zero.

The renderers (matplotlib) are imported only when a file is asked for, so the rest of ``adc`` starts fast.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from controller.bootstrap import build_store
from controller.cli.options import DatabaseUrl, settings_from_env
from controller.reports.model import Period, Report
from controller.reports.registry import REPORTS, build_report
from controller.reports.request import (
    DEFAULT_EXPIRING_DAYS,
    DEFAULT_OVERRIDE_THRESHOLD_PCT,
    GroupBy,
    InventoryTiming,
    ReportRequest,
)
from controller.store import schema

report_app = typer.Typer(
    help="Pharmacy reports: " + "; ".join(f"{k.name}: {k.summary}" for k in REPORTS.values()) + ".",
    no_args_is_help=True,
)
out = Console()

DATE_FORMATS = ["%Y-%m-%d"]
From = Annotated[datetime | None, typer.Option("--from", formats=DATE_FORMATS, help="First day (YYYY-MM-DD).")]
To = Annotated[datetime | None, typer.Option("--to", formats=DATE_FORMATS, help="Last day, included (YYYY-MM-DD).")]
Zone = Annotated[str, typer.Option("--tz", help="Time zone of the days (IANA name, e.g. America/Chicago).")]
CabinetId = Annotated[str | None, typer.Option("--cabinet", help="One cabinet; default: every cabinet in the store.")]
CsvOut = Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV to this file.", dir_okay=False)]
HtmlOut = Annotated[Path | None, typer.Option("--html", help="Write an HTML page with charts.", dir_okay=False)]
PdfOut = Annotated[Path | None, typer.Option("--pdf", help="Write a PDF with charts and the table.", dir_okay=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")]


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _run(
    name: str,
    *,
    database_url: str | None,
    first: datetime | None,
    last: datetime | None,
    timezone: str,
    cabinet: str | None,
    csv_out: Path | None,
    html_out: Path | None,
    pdf_out: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    store = build_store(settings_from_env(database_url))
    try:
        schema.require_current(store.db)
        now = store.clock.now()
        period = Period.from_dates(_day(first), _day(last), now=now, timezone=timezone)
        request = ReportRequest(period, cabinet_id=cabinet, **options)
        with store.db.read() as session:
            report = build_report(session, name, request, now)
    finally:
        store.close()
    _write_files(report, csv_out, html_out, pdf_out)
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _print(report)
        for path in (csv_out, html_out, pdf_out):
            if path is not None:
                out.print(f"wrote {path}", highlight=False)


def _write_files(report: Report[Any], csv_out: Path | None, html_out: Path | None, pdf_out: Path | None) -> None:
    if csv_out is not None:
        from controller.reports.csv_output import to_csv

        csv_out.write_text(to_csv(report), encoding="utf-8", newline="")
    if html_out is not None:
        from controller.reports.html_output import to_html

        html_out.write_text(to_html(report), encoding="utf-8")
    if pdf_out is not None:
        from controller.reports.pdf_output import to_pdf

        pdf_out.write_bytes(to_pdf(report))


def _print(report: Report[Any]) -> None:
    out.print(f"[bold]{report.title}[/bold]", highlight=False)
    out.print(f"period {report.period.describe()}", highlight=False, markup=False)
    for label, value in report.facts:
        out.print(f"  {label}: {value}", highlight=False, markup=False)
    if not report.rows:
        out.print("nothing to report in this period")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in report.columns:
        table.add_column(column.heading, no_wrap=True)
    rows = report.display_table()
    for cells in rows:
        table.add_row(*cells)
    natural = sum(max(len(c.heading), *(len(cells[i]) for cells in rows)) + 3 for i, c in enumerate(report.columns))
    if natural <= out.width:
        out.print(table)
        return
    # Too wide for this terminal: one block per row, "heading: value" (the CSV and HTML keep the table).
    for number, cells in enumerate(rows, start=1):
        pairs = [f"{c.heading}: {v}" for c, v in zip(report.columns, cells, strict=True) if v]
        out.print(f"[bold]{number}.[/bold] " + "  |  ".join(pairs), highlight=False, soft_wrap=False)


@report_app.command("cs-activity")
def cs_activity(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    by: Annotated[GroupBy, typer.Option("--by", help="One row per item, or per user or patient and item.")] = (
        GroupBy.ITEM
    ),
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Controlled-substance activity: removed, returned, restocked, wasted, net, witnesses."""
    _run("cs-activity", **_common(locals()), group_by=by)


@report_app.command("discrepancies")
def discrepancies(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Discrepancies raised in the period or still unresolved: age, resolution, review."""
    _run("discrepancies", **_common(locals()))


@report_app.command("overrides")
def overrides(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Flag rates above this percentage.", min=0, max=100)
    ] = DEFAULT_OVERRIDE_THRESHOLD_PCT,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Override rate by user and unit (ISMP: keep it near or below 5 %)."""
    _run("overrides", **_common(locals()), override_threshold_pct=threshold)


@report_app.command("expiring")
def expiring(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    days: Annotated[int, typer.Option("--days", help="Look this many days ahead.", min=0, max=3650)] = (
        DEFAULT_EXPIRING_DAYS
    ),
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Expired, expiring and quarantined lots now; refrigerator excursions in the period."""
    _run("expiring", **_common(locals()), expiring_days=days)


@report_app.command("par")
def par(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Par compliance now, and hours without usable stock in the period."""
    _run("par", **_common(locals()))


@report_app.command("dea-inventory")
def dea_inventory(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    taken_by: Annotated[str | None, typer.Option("--taken-by", help="User id of the person taking it.")] = None,
    timing: Annotated[InventoryTiming, typer.Option("--timing", help="Taken at the opening or close of business.")] = (
        InventoryTiming.CLOSE
    ),
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """DEA biennial inventory per location, as of the end of the period (--to) or now."""
    _run("dea-inventory", **_common(locals()), taken_by=taken_by, inventory_timing=timing)


@report_app.command("theft-loss")
def theft_loss(
    *,
    first: From = None,
    last: To = None,
    timezone: Zone = "UTC",
    cabinet: CabinetId = None,
    csv_out: CsvOut = None,
    html_out: HtmlOut = None,
    pdf_out: PdfOut = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Unexplained controlled-substance shortages: the facts DEA Form 106 asks for."""
    _run("theft-loss", **_common(locals()))


_COMMON = ("database_url", "first", "last", "timezone", "cabinet", "csv_out", "html_out", "pdf_out", "as_json")


def _common(arguments: dict[str, Any]) -> dict[str, Any]:
    return {key: arguments[key] for key in _COMMON}
