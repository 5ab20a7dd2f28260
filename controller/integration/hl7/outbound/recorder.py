"""Queueing the outbound messages of a dose entry, inside the transaction that appends the entry.

``OutboxRecorder`` is a ledger observer (``Ledger(observers=[OutboxRecorder()])``): ``Ledger.append`` calls it
with the append's session, so the outbox rows commit or roll back with the entry itself. A ``dose.removed`` or
``dose.returned`` with no quantity change (a take of zero) moves nothing and queues nothing; every other entry
type is ignored. Composing never refuses (``facts`` leaves what it cannot find empty), so only a store failure,
which fails the append anyway, can stop a dose here.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import insert
from sqlalchemy.orm import Session

from controller.domain.transactions import EventType, LedgerRecord
from controller.integration.hl7.outbound.compose import compose
from controller.integration.hl7.outbound.facts import read_facts
from controller.integration.hl7.outbound.queue import PENDING
from controller.store.ledger import SealedEntry
from controller.store.models import Base, Hl7OutboxRow

REPORTED = frozenset({EventType.DOSE_REMOVED, EventType.DOSE_RETURNED, EventType.WASTE_RECORDED})
_INSERT = insert(Base.metadata.tables[Hl7OutboxRow.__tablename__])


class OutboxRecorder:
    def __init__(self, *, application: str = "OPEN-ADC") -> None:
        self.application = application

    def __call__(self, session: Session, entry: SealedEntry, record: LedgerRecord) -> None:
        if record.event_type not in REPORTED:
            return
        if record.event_type is not EventType.WASTE_RECORDED and not record.quantity_change:
            return
        facts = read_facts(session, entry, record)
        queued_at = entry.recorded_at.astimezone(UTC)
        patient_key = facts.patient.id if facts.patient is not None else ""
        session.connection().execute(
            _INSERT,
            [
                {
                    "cabinet_id": entry.cabinet_id,
                    "ledger_seq": entry.seq,
                    "control_id": message.control_id,
                    "message_type": message.message_type,
                    "patient_key": patient_key,
                    "payload": message.payload,
                    "created_at": queued_at,
                    "status": PENDING,
                    "attempts": 0,
                    "refusals": 0,
                    "next_attempt_at": queued_at,
                    "last_error": "",
                }
                for message in compose(facts, application=self.application)
            ],
        )
