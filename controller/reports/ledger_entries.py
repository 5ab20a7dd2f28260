"""Ledger entries as typed records for the reports: selected by cabinet, event type and time in SQL (the
generated query columns and their indexes), the rest of each entry read from its canonical body.

Not responsible for verifying the chain (``adc ledger verify``) or for any aggregation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.transactions import EventType
from controller.store.ledger import format_timestamp
from controller.store.models import LedgerEntryRow


@dataclass(frozen=True, slots=True)
class Entry:
    cabinet_id: str
    seq: int
    at: datetime  # when it was recorded (the event's date, as DEA asks)
    event_type: str
    actor_id: str | None
    witness_id: str | None
    patient_id: str | None
    order_id: str | None
    item_id: str | None
    pocket_id: str | None
    lot_number: str | None
    quantity_expected: int | None
    quantity_actual: int | None
    quantity_change: int | None
    reason_code: str | None
    note: str | None
    details: Mapping[str, Any]

    @property
    def pull_id(self) -> str | None:
        value = self.details.get("pull_id")
        return str(value) if value is not None else None

    @property
    def is_first_lot_part(self) -> bool:
        """A removal split over several lots is one entry per lot; the first part stands for the removal."""
        return int(self.details.get("lot_part", 1)) == 1


STOCK_EVENTS = tuple(e.value for e in EventType if e.moves_stock)


def parse_recorded_at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def read_entries(
    session: Session,
    *,
    event_types: Iterable[str],
    cabinet_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    pocket_id: str | None = None,
    item_id: str | None = None,
) -> list[Entry]:
    """Entries of the given types recorded in [since, until), in ledger order (cabinet, then sequence).
    ``item_id`` narrows through the ledger's (item, time) index."""
    statement = select(LedgerEntryRow.body).where(LedgerEntryRow.event_type.in_(list(event_types)))
    if cabinet_id is not None:
        statement = statement.where(LedgerEntryRow.cabinet_id == cabinet_id)
    if since is not None:
        statement = statement.where(LedgerEntryRow.recorded_at >= format_timestamp(since))
    if until is not None:
        statement = statement.where(LedgerEntryRow.recorded_at < format_timestamp(until))
    if pocket_id is not None:
        statement = statement.where(LedgerEntryRow.pocket_id == pocket_id)
    if item_id is not None:
        statement = statement.where(LedgerEntryRow.item_id == item_id)
    bodies = session.execute(statement.order_by(LedgerEntryRow.cabinet_id, LedgerEntryRow.seq)).scalars()
    return [entry_from_body(body) for body in bodies]


def entry_from_body(body: str) -> Entry:
    doc = json.loads(body)
    return Entry(
        cabinet_id=str(doc["cabinet_id"]),
        seq=int(doc["seq"]),
        at=parse_recorded_at(str(doc["recorded_at"])),
        event_type=str(doc["event_type"]),
        actor_id=doc.get("actor_id"),
        witness_id=doc.get("witness_id"),
        patient_id=doc.get("patient_id"),
        order_id=doc.get("order_id"),
        item_id=doc.get("item_id"),
        pocket_id=doc.get("pocket_id"),
        lot_number=doc.get("lot_number"),
        quantity_expected=doc.get("quantity_expected"),
        quantity_actual=doc.get("quantity_actual"),
        quantity_change=doc.get("quantity_change"),
        reason_code=doc.get("reason_code"),
        note=doc.get("note"),
        details=dict(doc.get("details") or {}),
    )
