"""What the central's FHIR façade reads beyond the cabinet tables it shares with a stand-alone cabinet (patients,
the formulary and orders: ``controller.store.queries.fhir_reads``): every cabinet's dose entries from
``fleet_ledger``, and the fleet's care areas and cabinets from its registry.

Answers, as the cabinet's reads do: a page of dose entries of the given event types (optionally only some
(cabinet, seq) keys or patients), newest last by the cabinet's clock, with the total before paging; one entry by
(cabinet, seq); the registered cabinets and the care areas they serve. The lot's expiry comes from the fleet's
stock view (the chain's own record of the lot). Not: FHIR itself, or any write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, select, tuple_
from sqlalchemy.orm import Session

from controller.domain.patients import CareArea
from controller.domain.topology import Cabinet
from controller.store.central import tables as t
from controller.store.models import CareAreaRow
from controller.store.queries.fhir_reads import DispenseEntry, medication


def dispenses_page(
    session: Session,
    event_types: Sequence[str],
    *,
    keys: Sequence[tuple[str, int]] | None = None,
    patient_ids: Sequence[str] | None = None,
    offset: int,
    limit: int,
) -> tuple[int, list[DispenseEntry]]:
    conditions: list[ColumnElement[bool]] = [t.ledger.c.event_type.in_(list(event_types))]
    if keys is not None:
        conditions.append(tuple_(t.ledger.c.cabinet_id, t.ledger.c.seq).in_(list(keys)) if keys else false())
    if patient_ids is not None:
        conditions.append(t.ledger.c.patient_id.in_(list(patient_ids)))
    total = session.execute(select(func.count()).select_from(t.ledger).where(*conditions)).scalar_one()
    rows = session.execute(
        select(t.ledger.c.body)
        .where(*conditions)
        .order_by(t.ledger.c.recorded_at, t.ledger.c.cabinet_id, t.ledger.c.seq)
        .offset(offset)
        .limit(limit)
    ).scalars()
    return int(total), [_dispense(session, body) for body in rows]


def dispense(session: Session, cabinet_id: str, seq: int, event_types: Sequence[str]) -> DispenseEntry | None:
    body = session.execute(
        select(t.ledger.c.body).where(
            and_(t.ledger.c.cabinet_id == cabinet_id, t.ledger.c.seq == seq),
            t.ledger.c.event_type.in_(list(event_types)),
        )
    ).scalar_one_or_none()
    return _dispense(session, body) if body is not None else None


def _dispense(session: Session, body: str) -> DispenseEntry:
    entry: dict[str, Any] = json.loads(body)
    item_id = str(entry.get("item_id") or "")
    expiry = None
    if lot := entry.get("lot_number"):
        expiry = session.execute(
            select(t.stock.c.expiry).where(
                t.stock.c.cabinet_id == entry.get("cabinet_id"),
                t.stock.c.pocket_id == entry.get("pocket_id"),
                t.stock.c.lot_number == lot,
            )
        ).scalar_one_or_none()
    return DispenseEntry(entry, medication(session, item_id) if item_id else None, expiry)


def cabinet_ids(session: Session) -> list[str]:
    return list(session.execute(select(t.cabinets.c.cabinet_id).order_by(t.cabinets.c.cabinet_id)).scalars())


def fleet_places(session: Session) -> tuple[list[CareArea], list[Cabinet]]:
    """The registered cabinets (active ones) and every care area they serve (named as the hospital's table names
    it, where it does)."""
    rows = session.execute(
        select(t.cabinets.c.cabinet_id, t.cabinets.c.name, t.cabinets.c.care_area)
        .where(t.cabinets.c.active)
        .order_by(t.cabinets.c.cabinet_id)
    ).all()
    named = {row.id: row for row in session.execute(select(CareAreaRow)).scalars()}
    areas = sorted({row.care_area for row in rows if row.care_area})
    return (
        [CareArea(a, named[a].name if a in named else a, named[a].profiled if a in named else True) for a in areas],
        [Cabinet(row.cabinet_id, row.name, row.care_area) for row in rows],
    )
