"""Par compliance and stock-outs: for every pocket with an item, the units on hand and usable now against its
par, minimum and maximum, what restocking to par takes, and from the ledger how long in the period the pocket had
nothing usable and how many times it ran out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from controller.domain.topology import ABOVE_MAX, BELOW_MIN, BELOW_PAR, OK, STOCK_OUT, StockLevels
from controller.domain.transactions import EventType
from controller.reports.ledger_entries import read_entries
from controller.reports.model import BarChart, Column, Report
from controller.reports.reference import load_directory
from controller.reports.request import ReportRequest
from controller.reports.stock_history import (
    LotChange,
    ZeroTime,
    expiry_end,
    holds,
    lot_changes,
    quantities,
    zero_time,
)


@dataclass(frozen=True, slots=True)
class ParRow:
    cabinet_id: str
    drawer_id: str
    pocket_id: str
    item_id: str
    item: str
    schedule: str
    par: int
    min: int
    max: int
    on_hand: int  # every unit in the pocket, expired and held ones included
    usable: int
    status: str  # stock_out, below_min, below_par, ok, above_max
    to_par: int  # units that bring usable stock back to par, never above max (the pick list's rule)
    hours_at_zero: float  # in the period, from the ledger
    stock_outs: int


def par_rows(session: Session, request: ReportRequest, now: datetime) -> list[ParRow]:
    directory = load_directory(session)
    period = request.period
    changes = lot_changes(session, request.cabinet_id, until=max(period.end, now))
    by_pocket: dict[str, list[LotChange]] = defaultdict(list)
    for change in changes:
        by_pocket[change.pocket_id].append(change)
    all_holds = holds(session, request.cabinet_id)
    assigned = _assigned_at(session, request.cabinet_id)
    until = min(period.end, now)  # a period that ends later than now is measured up to now
    rows = []
    for place in directory.pockets_of(request.cabinet_id):
        if place.item_id is None:
            continue  # a return bin: no par
        item = directory.items[place.item_id]
        levels = StockLevels(place.par, place.min, place.max)
        mine = by_pocket.get(place.id, [])
        pocket_holds = [h for h in all_holds if h.item_id == place.item_id and h.pocket_id in (None, place.id)]
        current = quantities(c for c in mine if c.at <= now)
        on_hand = sum(q.quantity for q in current)
        usable = sum(
            q.quantity
            for q in current
            if q.quantity > 0
            and (q.expiry is None or now < expiry_end(q.expiry))
            and not any(h.blocks(place.id, place.item_id, q.lot, now) for h in pocket_holds)
        )
        # Before its item was assigned the pocket was not expected to hold anything.
        since = max(period.start, assigned.get(place.id, period.start))
        zero = (
            zero_time(
                place.id,
                item_id=place.item_id,
                changes=[c for c in mine if c.at < until],
                pocket_holds=pocket_holds,
                start=since,
                end=until,
            )
            if since < until
            else ZeroTime(0.0, 0, 0)
        )
        rows.append(
            ParRow(
                cabinet_id=place.cabinet_id,
                drawer_id=place.drawer_id,
                pocket_id=place.id,
                item_id=place.item_id,
                item=item.name,
                schedule=item.schedule,
                par=place.par,
                min=place.min,
                max=place.max,
                on_hand=on_hand,
                usable=usable,
                status=levels.status(usable, on_hand),
                to_par=levels.to_par(usable, on_hand),
                hours_at_zero=zero.hours_at_zero,
                stock_outs=zero.stock_outs,
            )
        )
    return rows


def _assigned_at(session: Session, cabinet_id: str | None) -> dict[str, datetime]:
    """When each pocket was given its current item (the last ``pocket.item_assigned`` entry)."""
    found = read_entries(session, event_types=[EventType.ITEM_ASSIGNED.value], cabinet_id=cabinet_id)
    return {e.pocket_id: e.at for e in found if e.pocket_id is not None}


def par_compliance(session: Session, request: ReportRequest, now: datetime) -> Report[ParRow]:
    rows = par_rows(session, request, now)
    counted = {s: sum(1 for r in rows if r.status == s) for s in (STOCK_OUT, BELOW_MIN, BELOW_PAR, OK, ABOVE_MAX)}
    at_par = counted[OK] + counted[ABOVE_MAX]
    columns = tuple(
        Column(key, heading)
        for key, heading in (
            ("cabinet_id", "cabinet"),
            ("drawer_id", "drawer"),
            ("pocket_id", "pocket"),
            ("item", "item"),
            ("schedule", "schedule"),
            ("par", "par"),
            ("min", "min"),
            ("max", "max"),
            ("on_hand", "on hand"),
            ("usable", "usable"),
            ("status", "status"),
            ("to_par", "to par"),
            ("hours_at_zero", "hours at zero"),
            ("stock_outs", "stock-outs"),
        )
    )
    short = [r for r in rows if r.hours_at_zero > 0]
    chart = BarChart(
        title="Hours with no usable stock in the period",
        y_label="hours",
        labels=tuple(f"{r.pocket_id} {r.item}" for r in short),
        values=tuple(r.hours_at_zero for r in short),
        flagged=tuple(r.status == STOCK_OUT for r in short),
    )
    return Report(
        name="par",
        title="Par compliance and stock-outs",
        period=request.period,
        generated_at=now,
        columns=columns,
        rows=tuple(rows),
        facts=(
            ("cabinet", request.cabinet_id or "every cabinet"),
            ("pockets", str(len(rows))),
            ("at or above par", f"{at_par} ({100 * at_par / len(rows):.0f} %)" if rows else "0"),
            ("below par", str(counted[BELOW_PAR])),
            ("below minimum", str(counted[BELOW_MIN])),
            ("stock-out now", str(counted[STOCK_OUT])),
            ("pockets out of stock at some time in the period", str(len(short))),
        ),
        notes=(
            "Usable: units not expired and not quarantined (a recall, or a refrigerator hold until released), as the "
            "cabinet counts them for a removal. Status compares usable units with the pocket's levels.",
            "Hours at zero and stock-outs are rebuilt from the ledger's stock entries, expiry dates and holds.",
        ),
        charts=(chart,) if short else (),
    )
