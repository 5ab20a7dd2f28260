"""Controlled-substance activity for a period, from the ledger: per item, or per user and item, or per patient and
item, the units removed, returned, restocked (and loaded), unloaded and adjusted, the net change of stock, the
amount wasted (in the dose unit the waste was recorded in), and who witnessed.

"Removed" counts units leaving a pocket for a patient; a removal split over two lots counts once per unit, not per
entry. "Net" is the sum of every stock change in the group (a return to the bin puts the unit back in the cabinet).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.reports.ledger_entries import Entry, read_entries
from controller.reports.model import Column, Report, Series, TimeChart
from controller.reports.reference import Directory, load_directory
from controller.reports.request import GroupBy, ReportRequest

E = EventType
_EVENTS = (
    E.DOSE_REMOVED,
    E.DOSE_RETURNED,
    E.STOCK_RESTOCKED,
    E.STOCK_LOADED,
    E.STOCK_UNLOADED,
    E.COUNT_ADJUSTED,
    E.WASTE_RECORDED,
)
TOP_ITEMS_CHARTED = 6


@dataclass(frozen=True, slots=True)
class CsActivityRow:
    group_id: str  # the user or patient id; the item id when grouped by item
    group_name: str
    item_id: str
    item: str
    schedule: str
    removed: int
    returned: int
    restocked: int
    unloaded: int
    adjusted: int
    net: int
    wasted: Decimal
    waste_unit: str
    removals: int  # removals (pulls), however many lots each came from
    wastes: int
    witnessed: int  # entries of this group signed by a witness
    unwitnessed_wastes: int  # a controlled waste needs a witness: each one here is a breach to look into
    witnesses: tuple[str, ...]


@dataclass
class _Tally:
    removed: int = 0
    returned: int = 0
    restocked: int = 0
    unloaded: int = 0
    adjusted: int = 0
    net: int = 0
    wasted: Decimal = Decimal(0)
    waste_units: set[str] = field(default_factory=set)
    removals: int = 0
    wastes: int = 0
    witnessed: int = 0
    unwitnessed_wastes: int = 0
    witnesses: set[str] = field(default_factory=set)

    def add(self, entry: Entry) -> None:
        change = entry.quantity_change or 0
        self.net += change
        kind = entry.event_type
        if kind == E.DOSE_REMOVED:
            self.removed -= change
            self.removals += 1 if entry.is_first_lot_part else 0
        elif kind == E.DOSE_RETURNED:
            self.returned += change
        elif kind in (E.STOCK_RESTOCKED, E.STOCK_LOADED):
            self.restocked += change
        elif kind == E.STOCK_UNLOADED:
            self.unloaded -= change
        elif kind == E.COUNT_ADJUSTED:
            self.adjusted += change
        elif kind == E.WASTE_RECORDED:
            self.wastes += 1
            self.wasted += Decimal(str(entry.details.get("amount", "0")))
            if entry.details.get("unit"):
                self.waste_units.add(str(entry.details["unit"]))
            if entry.witness_id is None:
                self.unwitnessed_wastes += 1
        if entry.witness_id is not None:
            self.witnessed += 1
            self.witnesses.add(entry.witness_id)


def controlled_entries(session: Session, request: ReportRequest, directory: Directory) -> list[Entry]:
    entries = read_entries(
        session,
        event_types=[e.value for e in _EVENTS],
        cabinet_id=request.cabinet_id,
        since=request.period.start,
        until=request.period.end,
    )
    return [e for e in entries if (item := directory.item(e.item_id)) is not None and item.controlled]


def cs_activity(session: Session, request: ReportRequest, now: datetime) -> Report[CsActivityRow]:
    directory = load_directory(session)
    entries = controlled_entries(session, request, directory)
    by = request.group_by
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for entry in entries:
        assert entry.item_id is not None
        group = {GroupBy.ITEM: entry.item_id, GroupBy.USER: entry.actor_id, GroupBy.PATIENT: entry.patient_id}[by]
        tallies[group or "", entry.item_id].add(entry)
    rows = []
    for (group, item_id), t in sorted(tallies.items(), key=lambda kv: (_name(directory, by, kv[0][0]), kv[0][1])):
        item = directory.items[item_id]
        rows.append(
            CsActivityRow(
                group_id=group,
                group_name=_name(directory, by, group),
                item_id=item_id,
                item=item.name,
                schedule=item.schedule,
                removed=t.removed,
                returned=t.returned,
                restocked=t.restocked,
                unloaded=t.unloaded,
                adjusted=t.adjusted,
                net=t.net,
                wasted=t.wasted,
                waste_unit="/".join(sorted(t.waste_units)),
                removals=t.removals,
                wastes=t.wastes,
                witnessed=t.witnessed,
                unwitnessed_wastes=t.unwitnessed_wastes,
                witnesses=tuple(sorted(t.witnesses)),
            )
        )
    group_heading = {GroupBy.ITEM: "item id", GroupBy.USER: "user", GroupBy.PATIENT: "patient"}[by]
    columns = (
        *((Column("group_id", group_heading), Column("group_name", "name")) if by is not GroupBy.ITEM else ()),
        Column("item_id", "item id"),
        Column("item", "item"),
        Column("schedule", "schedule"),
        Column("removed", "removed"),
        Column("returned", "returned"),
        Column("restocked", "restocked"),
        Column("unloaded", "unloaded"),
        Column("adjusted", "adjusted"),
        Column("net", "net"),
        Column("wasted", "wasted"),
        Column("waste_unit", "waste unit"),
        Column("removals", "removals"),
        Column("wastes", "wastes"),
        Column("witnessed", "witnessed entries"),
        Column("unwitnessed_wastes", "unwitnessed wastes"),
        Column("witnesses", "witnesses"),
    )
    return Report(
        name="cs-activity",
        title=f"Controlled-substance activity by {by.value}",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("units removed", str(sum(r.removed for r in rows))),
            ("removals", str(sum(r.removals for r in rows))),
            ("unwitnessed controlled wastes", str(sum(r.unwitnessed_wastes for r in rows))),
        ),
        notes=(
            "Units are the item's dispensing unit (syringe, vial, tablet); waste is the dose amount in the unit it "
            "was recorded in.",
            "Restocked includes initial loads. Net is the sum of every stock change: removals out, returns to the "
            "bin, restocks and loads in, unloads and count adjustments.",
        ),
        charts=(usage_chart(request, directory, entries),),
    )


def usage_chart(request: ReportRequest, directory: Directory, entries: list[Entry]) -> TimeChart:
    """Units removed per local day, one line per item (the most used ones)."""
    days = request.period.days()
    per_item: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(days, 0))
    for entry in entries:
        if entry.event_type == E.DOSE_REMOVED and entry.item_id is not None:
            per_item[entry.item_id][request.period.local_day(entry.at)] -= entry.quantity_change or 0
    busiest = sorted(per_item, key=lambda item_id: -sum(per_item[item_id].values()))[:TOP_ITEMS_CHARTED]
    zone = request.period.zone
    series = tuple(
        Series(
            directory.item_name(item_id),
            tuple((datetime(d.year, d.month, d.day, 12, tzinfo=zone), float(per_item[item_id][d])) for d in days),
        )
        for item_id in busiest
    )
    return TimeChart(
        title="Controlled substances removed per day",
        y_label="units removed",
        series=series,
        start=request.period.start,
        end=request.period.end,
        bars=True,
        daily=True,
    )


def _name(directory: Directory, by: GroupBy, key: str) -> str:
    if by is GroupBy.USER:
        return directory.user_name(key or None) or "(no user)"
    if by is GroupBy.PATIENT:
        return directory.patient_name(key or None) or "(no patient: restock, load or unload)"
    return directory.item_name(key)
