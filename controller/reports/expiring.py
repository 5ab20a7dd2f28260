"""Expiring and quarantined stock, now: every lot in a pocket that is expired, expires within N days, or is under
an active hold (a recall of the lot anywhere, a refrigerator hold in its pocket, or a lot condemned and not yet
unloaded), with its days left and the hold's reason. The refrigerator charts show the period's excursions (the
cause of temperature holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from controller.reports.model import Column, Report
from controller.reports.reference import Directory, load_directory
from controller.reports.request import ReportRequest
from controller.reports.stock_history import holds, lot_changes, quantities
from controller.reports.temperature import excursions, temperature_charts

EXPIRED, EXPIRING, QUARANTINED = "expired", "expiring", "quarantined"


@dataclass(frozen=True, slots=True)
class ExpiringRow:
    status: str  # quarantined (whatever its date), expired, or expiring
    cabinet_id: str
    drawer_id: str
    pocket_id: str
    item_id: str | None
    item: str
    schedule: str
    lot: str
    expiry: date | None
    days_left: int | None  # negative: expired that many days ago
    quantity: int
    hold_reason: str | None  # recall, temperature_excursion
    held_since: datetime | None
    review_decision: str | None  # destroy: stays blocked until unloaded


def expiring_rows(session: Session, request: ReportRequest, now: datetime, directory: Directory) -> list[ExpiringRow]:
    today = now.date()
    horizon = today + timedelta(days=request.expiring_days)
    active = [h for h in holds(session, request.cabinet_id) if h.end is None]
    rows = []
    for lot in quantities(c for c in lot_changes(session, request.cabinet_id, until=None) if c.at <= now):
        place = directory.pockets.get(lot.pocket_id)
        if place is None or lot.quantity <= 0:
            continue
        hold = next((h for h in active if h.blocks(lot.pocket_id, lot.item_id, lot.lot, now)), None)
        expired = lot.expiry is not None and lot.expiry < today
        if hold is not None:
            status = QUARANTINED
        elif expired:
            status = EXPIRED
        elif lot.expiry is not None and lot.expiry <= horizon:
            status = EXPIRING
        else:
            continue
        item = directory.item(lot.item_id)
        rows.append(
            ExpiringRow(
                status=status,
                cabinet_id=place.cabinet_id,
                drawer_id=place.drawer_id,
                pocket_id=lot.pocket_id,
                item_id=lot.item_id,
                item=item.name if item is not None else (lot.item_id or ""),
                schedule=item.schedule if item is not None else "",
                lot=lot.lot,
                expiry=lot.expiry,
                days_left=(lot.expiry - today).days if lot.expiry is not None else None,
                quantity=lot.quantity,
                hold_reason=hold.reason if hold is not None else None,
                held_since=hold.start if hold is not None else None,
                review_decision=hold.review_decision if hold is not None else None,
            )
        )
    order = {QUARANTINED: 0, EXPIRED: 1, EXPIRING: 2}
    rows.sort(key=lambda r: (order[r.status], r.expiry or date.max, r.cabinet_id, r.pocket_id, r.lot))
    return rows


def expiring(session: Session, request: ReportRequest, now: datetime) -> Report[ExpiringRow]:
    directory = load_directory(session)
    rows = expiring_rows(session, request, now, directory)
    fridges = sorted(
        {p.cabinet_id for p in directory.pockets_of(request.cabinet_id) if p.drawer_kind == "refrigerator"}
    )
    found = excursions(session, request)
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("status", "status"),
            ("cabinet_id", "cabinet"),
            ("pocket_id", "pocket"),
            ("item", "item"),
            ("schedule", "schedule"),
            ("lot", "lot"),
            ("expiry", "expiry"),
            ("days_left", "days left"),
            ("quantity", "quantity"),
            ("hold_reason", "hold"),
            ("held_since", "held since"),
            ("review_decision", "review"),
        )
    )
    counted = {s: [r for r in rows if r.status == s] for s in (QUARANTINED, EXPIRED, EXPIRING)}
    return Report(
        name="expiring",
        title=f"Expiring (within {request.expiring_days} days) and quarantined stock",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("as of", now.date().isoformat()),
            *(
                (f"{status} lots", f"{len(found_rows)} ({sum(r.quantity for r in found_rows)} units)")
                for status, found_rows in counted.items()
            ),
            ("refrigerator excursions in the period", str(len(found))),
        ),
        notes=(
            "A lot is usable through its expiry date. Quarantined lots are listed whatever their date; a lot "
            "condemned on review stays until it is unloaded.",
            "The ledger records each refrigerator excursion that outlasted the limit (its start, how long it had "
            "lasted, the worst reading); individual readings are not stored, so the chart shows excursions as "
            "spans, and recent readings only when the controller serving the report holds them.",
        ),
        charts=temperature_charts(request, found, fridges),
    )
