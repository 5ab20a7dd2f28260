"""Discrepancies with their age and resolution: every discrepancy raised in the period, and every one still
unresolved whenever it was raised. The row comes from the discrepancy table (expected, counted, raised, deadline,
status); the resolution's reason, witness and the pharmacist's review come from their ledger entries.

Age is the time from raising to resolution, or to the report's time while unresolved; a discrepancy is overdue
when it was resolved after its deadline (the end of its shift) or is still unresolved past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.reports.ledger_entries import Entry, read_entries
from controller.reports.model import BarChart, Column, Report
from controller.reports.reference import load_directory
from controller.reports.request import ReportRequest
from controller.store.models import DiscrepancyRow

UNRESOLVED = ("open", "escalated")


@dataclass(frozen=True, slots=True)
class DiscrepancyReportRow:
    discrepancy_id: int
    cabinet_id: str
    pocket_id: str
    item_id: str | None
    item: str
    schedule: str
    controlled: bool
    expected: int
    counted: int | None  # None: an undocumented access, not counted yet
    difference: int | None  # counted - expected: negative is a shortage (None until counted)
    raised_by: str
    raised_at: datetime
    deadline: datetime
    status: str  # open, escalated, resolved, reviewed
    escalated: bool
    resolution: str | None  # the reason code
    resolved_by: str | None
    resolution_witness: str | None
    resolved_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    age_hours: float
    overdue: bool


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def discrepancy_rows(session: Session, request: ReportRequest, now: datetime) -> list[DiscrepancyReportRow]:
    period = request.period
    statement = select(DiscrepancyRow).where(
        or_(
            (DiscrepancyRow.raised_at >= period.start) & (DiscrepancyRow.raised_at < period.end),
            DiscrepancyRow.status.in_(UNRESOLVED),
        )
    )
    if request.cabinet_id is not None:
        statement = statement.where(DiscrepancyRow.cabinet_id == request.cabinet_id)
    found = list(session.execute(statement.order_by(DiscrepancyRow.raised_at, DiscrepancyRow.id)).scalars())
    directory = load_directory(session)
    followed = _follow_ups(session, request.cabinet_id, {str(r.id) for r in found})
    rows = []
    for d in found:
        raised_at, deadline = _aware(d.raised_at), _aware(d.deadline)
        assert raised_at is not None and deadline is not None
        entries = followed.get((d.cabinet_id, str(d.id)), {})
        resolved = entries.get(EventType.DISCREPANCY_RESOLVED.value)
        reviewed = entries.get(EventType.DISCREPANCY_REVIEWED.value)
        resolved_at = resolved.at if resolved is not None else _aware(d.resolved_at)
        settled_at = resolved_at if resolved_at is not None else now
        item = directory.item(d.item_id)
        rows.append(
            DiscrepancyReportRow(
                discrepancy_id=d.id,
                cabinet_id=d.cabinet_id,
                pocket_id=d.pocket_id,
                item_id=d.item_id,
                item=item.name if item is not None else (d.item_id or ""),
                schedule=item.schedule if item is not None else "",
                controlled=d.controlled,
                expected=d.expected,
                counted=d.counted,
                difference=d.counted - d.expected if d.counted is not None else None,
                raised_by=d.raised_by,
                raised_at=raised_at,
                deadline=deadline,
                status=d.status,
                escalated=EventType.DISCREPANCY_ESCALATED.value in entries or d.status == "escalated",
                resolution=resolved.reason_code if resolved is not None else None,
                resolved_by=resolved.actor_id if resolved is not None else d.resolved_by,
                resolution_witness=resolved.witness_id if resolved is not None else None,
                resolved_at=resolved_at,
                reviewed_by=reviewed.actor_id if reviewed is not None else None,
                reviewed_at=reviewed.at if reviewed is not None else None,
                age_hours=round((settled_at - raised_at).total_seconds() / 3600, 2),
                overdue=settled_at > deadline,
            )
        )
    return rows


def _follow_ups(session: Session, cabinet_id: str | None, ids: set[str]) -> dict[tuple[str, str], dict[str, Entry]]:
    """(cabinet, discrepancy id) -> event type -> its entry (escalated, resolved, reviewed)."""
    if not ids:
        return {}
    kinds = (EventType.DISCREPANCY_ESCALATED, EventType.DISCREPANCY_RESOLVED, EventType.DISCREPANCY_REVIEWED)
    found: dict[tuple[str, str], dict[str, Entry]] = {}
    for entry in read_entries(session, event_types=[k.value for k in kinds], cabinet_id=cabinet_id):
        key = str(entry.details.get("discrepancy_id"))
        if key in ids:
            found.setdefault((entry.cabinet_id, key), {})[entry.event_type] = entry
    return found


def discrepancies(session: Session, request: ReportRequest, now: datetime) -> Report[DiscrepancyReportRow]:
    rows = discrepancy_rows(session, request, now)
    unresolved = [r for r in rows if r.status in UNRESOLVED]
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("discrepancy_id", "id"),
            ("cabinet_id", "cabinet"),
            ("pocket_id", "pocket"),
            ("item", "item"),
            ("schedule", "schedule"),
            ("expected", "expected"),
            ("counted", "counted"),
            ("difference", "difference"),
            ("raised_by", "raised by"),
            ("raised_at", "raised"),
            ("deadline", "due"),
            ("status", "status"),
            ("escalated", "escalated"),
            ("resolution", "resolution"),
            ("resolved_by", "resolved by"),
            ("resolution_witness", "witness"),
            ("resolved_at", "resolved"),
            ("reviewed_by", "reviewed by"),
            ("reviewed_at", "reviewed"),
            ("age_hours", "age (h)"),
            ("overdue", "overdue"),
        )
    )
    chart = BarChart(
        title="Age of each discrepancy (hours to resolution, or to now when unresolved)",
        y_label="hours",
        labels=tuple(f"#{r.discrepancy_id} {r.pocket_id}" for r in rows),
        values=tuple(r.age_hours for r in rows),
        flagged=tuple(r.overdue for r in rows),
    )
    return Report(
        name="discrepancies",
        title="Discrepancies: age and resolution",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("discrepancies", str(len(rows))),
            ("unresolved", str(len(unresolved))),
            ("unresolved, controlled", str(sum(1 for r in unresolved if r.controlled))),
            ("overdue", str(sum(1 for r in rows if r.overdue))),
        ),
        notes=(
            "Every discrepancy raised in the period, and every one still unresolved whenever it was raised.",
            "A discrepancy is due by the end of the shift it arose in; overdue: resolved after that, or still open.",
        ),
        charts=(chart,) if rows else (),
    )
