"""The facts a theft or loss report asks for (DEA Form 106), gathered from the discrepancies of controlled items
that show a shortage and are not explained: still unresolved, or resolved as ``unresolved_unknown`` (cause not
found). For each: the drug (name, NDC, strength, dosage form, schedule), the quantity missing, the lots in the
pocket then, where, when it was discovered and by whom, the last people who had the pocket open, and the two
deadlines that run from discovery if pharmacy decides it is a theft or significant loss: written notice to the
DEA within one business day, Form 106 within 45 days (21 CFR 1301.76(b)).

The report does not decide whether a shortage is a theft or a significant loss; it puts the facts together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.reports.discrepancies import UNRESOLVED, DiscrepancyReportRow, discrepancy_rows
from controller.reports.ledger_entries import read_entries
from controller.reports.model import Column, Report
from controller.reports.reference import Directory, load_directory
from controller.reports.request import ReportRequest
from controller.reports.stock_history import lot_changes, quantities
from controller.store.models import DiscrepancyRow

CAUSE_NOT_FOUND = "unresolved_unknown"
FORM_106_DAYS = 45
ACCESS_EVENTS = (
    EventType.DOSE_REMOVED,
    EventType.DOSE_RETURNED,
    EventType.STOCK_RESTOCKED,
    EventType.STOCK_LOADED,
    EventType.STOCK_UNLOADED,
    EventType.COUNT_ENTERED,
)


@dataclass(frozen=True, slots=True)
class TheftLossRow:
    discrepancy_id: int
    cabinet_id: str
    care_area: str
    pocket_id: str
    item_id: str
    item: str
    ndc: str
    strength: str
    dosage_form: str
    schedule: str
    quantity_missing: int
    unit: str
    lots: tuple[str, ...]  # the lots in the pocket when it was discovered
    discovered_at: datetime
    discovered_by: str
    status: str
    resolution: str | None
    last_accessed_by: tuple[str, ...]  # the last two people before discovery, most recent first
    dea_notice_due: date  # one business day after discovery
    form_106_due: date


def next_business_day(day: date) -> date:
    """The next weekday (public holidays are the facility's to add)."""
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def is_unexplained_loss(row: DiscrepancyReportRow) -> bool:
    return (
        row.controlled
        and row.difference is not None
        and row.difference < 0
        and (row.status in UNRESOLVED or row.resolution == CAUSE_NOT_FOUND)
    )


def theft_loss_rows(session: Session, request: ReportRequest, now: datetime) -> list[TheftLossRow]:
    directory = load_directory(session)
    rows = []
    for d in discrepancy_rows(session, request, now):
        if not is_unexplained_loss(d) or d.item_id is None:
            continue
        raised = session.get(DiscrepancyRow, d.discrepancy_id)
        seq = raised.ledger_seq if raised is not None else None  # the entry that raised it
        item = directory.items[d.item_id]
        cabinet = directory.cabinets.get(d.cabinet_id)
        discovered = d.raised_at.astimezone(request.period.zone).date()
        rows.append(
            TheftLossRow(
                discrepancy_id=d.discrepancy_id,
                cabinet_id=d.cabinet_id,
                care_area=cabinet.care_area if cabinet is not None else "",
                pocket_id=d.pocket_id,
                item_id=item.id,
                item=item.name,
                ndc=item.ndc,
                strength=item.strength,
                dosage_form=item.dosage_form,
                schedule=item.schedule,
                quantity_missing=-(d.difference or 0),
                unit=item.unit,
                lots=_lots_then(session, d, item.id, seq),
                discovered_at=d.raised_at,
                discovered_by=d.raised_by,
                status=d.status,
                resolution=d.resolution,
                last_accessed_by=_last_accessors(session, d, seq, directory),
                dea_notice_due=next_business_day(discovered),
                form_106_due=discovered + timedelta(days=FORM_106_DAYS),
            )
        )
    return rows


def _lots_then(session: Session, d: DiscrepancyReportRow, item_id: str, seq: int | None) -> tuple[str, ...]:
    """Lots in the pocket just before the discrepancy was raised (by ledger order: entries share a timestamp)."""
    changes = lot_changes(session, d.cabinet_id, until=None, pocket_id=d.pocket_id, item_id=item_id)
    held = quantities(c for c in changes if (c.seq < seq if seq is not None else c.at <= d.raised_at))
    return tuple(f"{q.lot} ×{q.quantity}" for q in held if q.item_id == item_id and q.quantity > 0)


def _last_accessors(
    session: Session, d: DiscrepancyReportRow, seq: int | None, directory: Directory, how_many: int = 2
) -> tuple[str, ...]:
    entries = read_entries(
        session,
        event_types=[e.value for e in ACCESS_EVENTS],
        cabinet_id=d.cabinet_id,
        pocket_id=d.pocket_id,
        item_id=d.item_id,
        until=d.raised_at + timedelta(seconds=1),  # entries after it (by sequence) are skipped below
    )
    people: list[str] = []
    for entry in reversed(entries):
        if seq is not None and entry.seq > seq:
            continue
        if entry.actor_id and entry.actor_id not in people:
            people.append(entry.actor_id)
        if len(people) == how_many:
            break
    return tuple(f"{p} ({directory.user_name(p)})" for p in people)


def theft_loss(session: Session, request: ReportRequest, now: datetime) -> Report[TheftLossRow]:
    rows = theft_loss_rows(session, request, now)
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("discrepancy_id", "discrepancy"),
            ("cabinet_id", "cabinet"),
            ("care_area", "care area"),
            ("pocket_id", "pocket"),
            ("item", "name"),
            ("ndc", "NDC"),
            ("strength", "strength"),
            ("dosage_form", "dosage form"),
            ("schedule", "schedule"),
            ("quantity_missing", "quantity missing"),
            ("unit", "unit"),
            ("lots", "lots in the pocket"),
            ("discovered_at", "discovered"),
            ("discovered_by", "discovered by"),
            ("status", "status"),
            ("resolution", "resolution"),
            ("last_accessed_by", "last accessed by"),
            ("dea_notice_due", "DEA notice due"),
            ("form_106_due", "Form 106 due"),
        )
    )
    return Report(
        name="theft-loss",
        title="Theft or loss of controlled substances: facts for DEA Form 106",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("unexplained shortages", str(len(rows))),
            ("units missing", str(sum(r.quantity_missing for r in rows))),
        ),
        notes=(
            "Controlled-substance discrepancies with fewer units counted than expected that are unresolved or "
            "were resolved as cause not found. Deciding whether one is a theft or a significant loss is "
            "pharmacy's; a pattern of small losses can be significant.",
            "If it is: notify the DEA Field Division in writing within one business day of discovery and file "
            "DEA Form 106 within 45 days (21 CFR 1301.76(b)). Business days here skip weekends, not holidays.",
        ),
    )
