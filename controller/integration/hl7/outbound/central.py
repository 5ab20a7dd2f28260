"""The central's HL7 outbox: the dispense, return and waste messages of every cabinet's dose entries, queued as
the central applies them, so the hospital has one interface for all its cabinets.

``CentralOutbox`` is an observer of the central's ingest (``CentralWorker(observers=[CentralOutbox()])``): told
of a batch's applied entries inside the transaction that applies them, it queues their messages with the same
``OutboxRecorder`` a stand-alone cabinet runs, from the entry as its cabinet sealed it. An entry the central judges a
duplicate is not applied, so it queues nothing twice. The central's tables hold what the messages name: the
patient (its ADT feed), the placer and filler numbers (its order feed), the item (its formulary); the lot's
expiry comes from the entry itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from controller.domain.chain import ChainEntry
from controller.domain.transactions import EventType, LedgerRecord
from controller.integration.hl7.outbound.recorder import REPORTED, OutboxRecorder
from controller.store.ledger import SealedEntry

Applied = Mapping[str, Sequence[tuple[ChainEntry, dict[str, Any]]]]  # cabinet -> applied entries and their bodies


class CentralOutbox:
    def __init__(self, *, application: str = "OPEN-ADC") -> None:
        self.recorder = OutboxRecorder(application=application)

    def __call__(
        self, connection: Connection, applied: Mapping[str, Sequence[tuple[ChainEntry, dict[str, Any]]]]
    ) -> None:
        reported = [(entry, document) for entries in applied.values() for entry, document in entries
                    if document.get("event_type") in _REPORTED]  # fmt: skip
        if not reported:
            return
        session = Session(bind=connection)  # joins the ingest's transaction; never commits it
        try:
            for entry, document in reported:
                record = _record(document)
                at = datetime.fromisoformat(str(document["recorded_at"]))
                sealed = SealedEntry(entry.cabinet_id, entry.seq, at, entry.body, entry.prev_hash, entry.hash)
                self.recorder(session, sealed, record)
            session.flush()
        finally:
            session.close()


_REPORTED = frozenset(e.value for e in REPORTED)


def _record(document: Mapping[str, Any]) -> LedgerRecord:
    def text(key: str) -> str | None:
        value = document.get(key)
        return None if value is None else str(value)

    def number(key: str) -> int | None:
        value = document.get(key)
        return value if isinstance(value, int) else None

    return LedgerRecord(
        EventType(str(document["event_type"])),
        actor_id=text("actor_id"), witness_id=text("witness_id"), patient_id=text("patient_id"),
        order_id=text("order_id"), item_id=text("item_id"), pocket_id=text("pocket_id"),
        lot_number=text("lot_number"), quantity_expected=number("quantity_expected"),
        quantity_actual=number("quantity_actual"), quantity_change=number("quantity_change"),
        reason_code=text("reason_code"), note=text("note"), device_state=dict(document.get("device_state") or {}),
        details=dict(document.get("details") or {}),
    )  # fmt: skip
