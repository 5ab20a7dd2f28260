"""The DEA biennial inventory of controlled substances (21 CFR 1304.11), per location: every lot of a controlled
item in every pocket (return bins included: returned doses are still on hand), with the item's name, NDC,
strength, dosage form and schedule, the lot and expiry, the quantity, and the last physical count of the pocket.

Quantities are the perpetual (book) count rebuilt from the ledger as of the inventory's moment (the end of the
period, or now). Schedule II and IIN need an exact count; for III to V an estimated count of an opened container
is allowed, except a container holding more than 1,000 tablets or capsules, which is counted exactly. The header
records the date and time, opening or close of business, and the person taking it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from controller.domain.medication import DeaSchedule
from controller.domain.transactions import EventType
from controller.errors import VerificationError
from controller.reports.ledger_entries import Entry, read_entries
from controller.reports.model import Column, Report
from controller.reports.reference import Directory, load_directory
from controller.reports.request import ReportRequest
from controller.reports.stock_history import lot_changes, quantities

EXACT = "exact count"
ESTIMATE_ALLOWED = "estimate allowed (opened container)"
LARGE_CONTAINER = 1000


def count_rule(schedule: str, quantity: int) -> str:
    """What counting the DEA asks for (21 CFR 1304.11(e)(3)): exact for schedule II, and for III-V when the
    container holds more than 1,000 units; otherwise an estimate of an opened container is allowed."""
    if DeaSchedule.parse(schedule).is_schedule_ii or quantity > LARGE_CONTAINER:
        return EXACT
    return ESTIMATE_ALLOWED


@dataclass(frozen=True, slots=True)
class DeaInventoryRow:
    cabinet_id: str
    care_area: str
    drawer_id: str
    drawer: str
    pocket_id: str
    item_id: str
    item: str
    ndc: str
    strength: str
    dosage_form: str
    package: str
    schedule: str
    lot: str
    expiry: date | None
    quantity: int
    unit: str
    count_rule: str
    last_count: int | None
    last_counted_at: datetime | None
    last_counted_by: str | None


def inventory_moment(request: ReportRequest, now: datetime) -> datetime:
    return min(request.period.end, now)


def dea_rows(session: Session, request: ReportRequest, now: datetime, directory: Directory) -> list[DeaInventoryRow]:
    as_of = inventory_moment(request, now)
    changes = [c for c in lot_changes(session, request.cabinet_id, until=None) if c.at <= as_of]
    counts = _last_counts(session, request, as_of)
    rows = []
    for lot in quantities(changes):
        item = directory.item(lot.item_id)
        place = directory.pockets.get(lot.pocket_id)
        if item is None or not item.controlled or place is None or lot.quantity <= 0:
            continue
        cabinet = directory.cabinets.get(place.cabinet_id)
        count = counts.get(lot.pocket_id)
        rows.append(
            DeaInventoryRow(
                cabinet_id=place.cabinet_id,
                care_area=cabinet.care_area if cabinet is not None else "",
                drawer_id=place.drawer_id,
                drawer=place.drawer_label,
                pocket_id=place.id,
                item_id=item.id,
                item=item.name,
                ndc=item.ndc,
                strength=item.strength,
                dosage_form=item.dosage_form,
                package=item.package,
                schedule=item.schedule,
                lot=lot.lot,
                expiry=lot.expiry,
                quantity=lot.quantity,
                unit=item.unit,
                count_rule=count_rule(item.schedule, lot.quantity),
                last_count=count.quantity_actual if count is not None else None,
                last_counted_at=count.at if count is not None else None,
                last_counted_by=count.actor_id if count is not None else None,
            )
        )
    placed = {p.id: (p.cabinet_id, p.drawer_position, p.position) for p in directory.pockets.values()}
    rows.sort(key=lambda r: (_schedule_order(r.schedule), placed[r.pocket_id], r.item, r.lot))
    return rows


def _schedule_order(schedule: str) -> int:
    """Schedule II records are kept apart from III-V: they come first."""
    return 0 if DeaSchedule.parse(schedule).is_schedule_ii else 1


def _last_counts(session: Session, request: ReportRequest, as_of: datetime) -> dict[str, Entry]:
    latest: dict[str, Entry] = {}
    for entry in read_entries(
        session, event_types=[EventType.COUNT_ENTERED.value], cabinet_id=request.cabinet_id, until=as_of
    ):
        if entry.pocket_id is not None and entry.quantity_actual is not None:
            latest[entry.pocket_id] = entry
    return latest


def dea_inventory(session: Session, request: ReportRequest, now: datetime) -> Report[DeaInventoryRow]:
    directory = load_directory(session)
    if request.taken_by is not None and request.taken_by not in directory.users:
        raise VerificationError(
            "report.bad_parameter",
            f"the inventory must name the person taking it: {request.taken_by!r} is not a user of this store",
            taken_by=request.taken_by,
        )
    rows = dea_rows(session, request, now, directory)
    as_of = inventory_moment(request, now)
    zone = request.period.zone
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row.schedule] += row.quantity
    taker = f"{request.taken_by} ({directory.user_name(request.taken_by)})" if request.taken_by else "not given"
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("cabinet_id", "cabinet"),
            ("care_area", "care area"),
            ("drawer_id", "drawer"),
            ("pocket_id", "pocket"),
            ("item", "name"),
            ("ndc", "NDC"),
            ("strength", "strength"),
            ("dosage_form", "dosage form"),
            ("package", "package"),
            ("schedule", "schedule"),
            ("lot", "lot"),
            ("expiry", "expiry"),
            ("quantity", "quantity"),
            ("unit", "unit"),
            ("count_rule", "count"),
            ("last_count", "last physical count"),
            ("last_counted_at", "counted at"),
            ("last_counted_by", "counted by"),
        )
    )
    cabinets = sorted({r.cabinet_id for r in rows}) or ([request.cabinet_id] if request.cabinet_id else [])
    return Report(
        name="dea-inventory",
        title="DEA biennial inventory of controlled substances",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("inventory date and time", f"{as_of.astimezone(zone):%Y-%m-%d %H:%M} ({request.period.timezone})"),
            ("taken at", f"{request.inventory_timing.value} of business"),
            ("taken by", taker),
            ("locations", ", ".join(cabinets) or "none"),
            *((f"schedule {s} units", str(n)) for s, n in sorted(totals.items(), key=lambda kv: kv[0])),
        ),
        notes=(
            "Quantities are the perpetual count rebuilt from the ledger at the inventory's moment; the last "
            "physical (blind or count-back) count of each pocket is shown beside it.",
            "Schedule II/IIN: exact count. Schedules III-V: an estimated count of an opened container is allowed "
            "unless it holds more than 1,000 tablets or capsules (21 CFR 1304.11(e)(3)).",
            "Keep this inventory at the registered location for at least two years.",
        ),
    )
