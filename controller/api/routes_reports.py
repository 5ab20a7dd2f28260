"""Pharmacy reports of this cabinet for the pharmacy console: ``GET /api/v1/reports`` lists them with their URLs,
``GET /api/v1/reports/{name}`` answers one as JSON, or with ``?format=csv|html|pdf`` as a file (the HTML page
carries its charts as inline SVG). Pharmacists and administrators at the cabinet, and integrators holding
``ledger:read`` (the reports are read from the ledger). Building runs in a worker thread: a long period never
stalls the event loop that polls the sensors."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from controller.api.access import Access, Principal, runtime_of
from controller.api.routing import PROBLEMS, Data
from controller.domain.users import Privilege
from controller.reports.model import Period, Report
from controller.reports.registry import REPORTS, build_report
from controller.reports.request import (
    DEFAULT_EXPIRING_DAYS,
    DEFAULT_OVERRIDE_THRESHOLD_PCT,
    GroupBy,
    InventoryTiming,
    ReportRequest,
)

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=PROBLEMS)

Reader = Annotated[Principal, Depends(Access(Privilege.REVIEW, Privilege.ADMINISTER, scope="ledger:read"))]
FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report: JSON, or the file asked for with ``format``",
        "content": {"text/csv": {}, "text/html": {}, "application/pdf": {}},
    }
}


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"
    PDF = "pdf"


@router.get("", response_model=Data, summary="The pharmacy reports and their URLs")
async def catalogue(_: Reader) -> JSONResponse:
    reports = [
        {
            "name": kind.name,
            "summary": kind.summary,
            "url": f"{router.prefix}/{kind.name}",
            "formats": {f.value: f"{router.prefix}/{kind.name}?format={f.value}" for f in Format},
        }
        for kind in REPORTS.values()
    ]
    return JSONResponse({"data": {"reports": reports}})


@router.get(
    "/{name}",
    response_model=Data,
    responses=FILES,
    summary="One report, as JSON or as a CSV, HTML or PDF file",
    description="Reports: "
    + ", ".join(REPORTS)
    + ". Days are whole local days in ``tz``, both included; without ``to`` the period runs to now, without "
    "``from`` it covers the 30 days before its end. ``by`` groups cs-activity, ``days`` is the expiring "
    "horizon, ``threshold`` the override rate flagged (%), ``taken_by`` and ``timing`` head a dea-inventory "
    "(``taken_by`` defaults to the user at the cabinet).",
)
async def report(
    request: Request,
    caller: Reader,
    *,
    name: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z-]+$")],
    first: Annotated[date | None, Query(alias="from", description="first day (YYYY-MM-DD)")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day, included")] = None,
    tz: Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone of the days")] = "UTC",
    format: Annotated[Format, Query(description="json (default), csv, html or pdf")] = Format.JSON,
    by: GroupBy = GroupBy.ITEM,
    days: Annotated[int, Query(ge=0, le=3650)] = DEFAULT_EXPIRING_DAYS,
    threshold: Annotated[float, Query(ge=0, le=100)] = DEFAULT_OVERRIDE_THRESHOLD_PCT,
    taken_by: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    timing: InventoryTiming = InventoryTiming.CLOSE,
) -> Response:
    runtime = runtime_of(request)
    now = runtime.clock.now()
    report_request = ReportRequest(
        Period.from_dates(first, last, now=now, timezone=tz),
        cabinet_id=runtime.cabinet_id,
        group_by=by,
        expiring_days=days,
        override_threshold_pct=threshold,
        taken_by=taken_by or (caller.id if caller.kind == "cabinet" else None),
        inventory_timing=timing,
        temperature_readings=_readings(runtime.events.temperatures.points()),
    )

    def build() -> tuple[Report[Any], bytes | str | None]:
        with runtime.db.read() as session:
            built = build_report(session, name, report_request, now)
        return built, _render(built, format)

    built, rendered = await asyncio.to_thread(build)
    filename = f"{built.name}-{built.period.local_day(now).isoformat()}.{format.value}"
    if format is Format.CSV:
        return Response(rendered, media_type="text/csv; charset=utf-8", headers=_attachment(filename))
    if format is Format.HTML:
        return HTMLResponse(rendered)
    if format is Format.PDF:
        return Response(rendered, media_type="application/pdf", headers=_attachment(filename))
    return JSONResponse({"data": built.as_json()})


def _render(report: Report[Any], form: Format) -> bytes | str | None:
    # The renderers load matplotlib: imported on first use, not when the API starts.
    if form is Format.CSV:
        from controller.reports.csv_output import to_csv

        return to_csv(report)
    if form is Format.HTML:
        from controller.reports.html_output import to_html

        return to_html(report)
    if form is Format.PDF:
        from controller.reports.pdf_output import to_pdf

        return to_pdf(report)
    return None


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _readings(points: list[dict[str, Any]]) -> tuple[tuple[datetime, float], ...]:
    return tuple((datetime.fromisoformat(p["at"]), float(p["temperature_c"])) for p in points)
