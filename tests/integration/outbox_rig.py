"""What the outbox tests share: a seeded cabinet with a few patients, dose entries written through a ledger that
carries the outbox observer, and a receiver on a real loopback socket that misbehaves on cue.

The receiver is deliberately not our code: it frames by hand, reads messages with python-hl7 and answers ACKs it
writes itself. Like a real interface engine it applies a control id once (a repeat gets AA and is counted), and it
checks the ordering promise on every frame it receives: a patient's message may only arrive once the message
queued before it for that patient has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hl7
import sqlalchemy as sa

from controller.domain.clock import Clock, FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.integration.hl7.outbound import OutboxRecorder
from controller.store.database import Database
from controller.store.ledger import Ledger, SealedEntry
from controller.store.models import EncounterRow, PatientRow
from tests.engine.rig import CABINET, MORPHINE, seed

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
PATIENTS = ("MRN1", "MRN2", "MRN3", "MRN4")


def seed_patients(db: Database, clock: FixedClock) -> None:
    """The engine test cabinet (CAB-E, ICU, MRN1 with orders ORD1/ORD2) and three more patients in the ICU."""
    seed(db, clock)
    with db.write() as session:
        for index, mrn in enumerate(PATIENTS[1:], start=2):
            session.add(PatientRow(id=mrn, family_name=f"Patient{index}", given_name="Test", allergies=""))
            session.flush()
            session.add(EncounterRow(id=f"ENC{index}", patient_id=mrn, care_area_id="ICU", room=f"10{index}", bed="A"))


def outbox_ledger(clock: Clock, *, is_simulator: bool = True) -> Ledger:
    return Ledger(CABINET, clock, is_simulator=is_simulator, observers=[OutboxRecorder()])


def removal(patient: str, *, units: int = 1, order: str | None = None, lot: str = "A1") -> LedgerRecord:
    return LedgerRecord(
        event_type=EventType.DOSE_REMOVED,
        actor_id="NURSE1",
        patient_id=patient,
        order_id=order,
        item_id=MORPHINE,
        pocket_id="D2-P01",
        lot_number=lot,
        quantity_actual=units,
        quantity_change=-units,
        details={"pull_id": f"PULL-{patient}", "override": False},
    )


def returned(patient: str, *, units: int = 1) -> LedgerRecord:
    return LedgerRecord(
        event_type=EventType.DOSE_RETURNED,
        actor_id="NURSE1",
        patient_id=patient,
        item_id=MORPHINE,
        pocket_id="D2-P01",
        lot_number="A1",
        quantity_actual=units,
        quantity_change=units,
        reason_code="return_bin",
        details={"return_id": f"RET-{patient}", "pull_id": f"PULL-{patient}", "destination": "return_bin"},
    )


def wasted(patient: str) -> LedgerRecord:
    return LedgerRecord(
        event_type=EventType.WASTE_RECORDED,
        actor_id="NURSE1",
        witness_id="NURSE2",
        patient_id=patient,
        item_id=MORPHINE,
        pocket_id="D2-P01",
        lot_number="A1",
        reason_code="partial_dose",
        details={"waste_id": f"W-{patient}", "pull_id": f"PULL-{patient}", "amount": "2.0", "unit": "mg",
                 "partial": True},
    )  # fmt: skip


def append(db: Database, ledger: Ledger, *records: LedgerRecord) -> list[SealedEntry]:
    with db.write() as session:
        return [ledger.append(session, record) for record in records]


def outbox_rows(db: Database) -> list[dict[str, Any]]:
    with db.reader.connect() as connection:
        result = connection.execute(sa.text("SELECT * FROM hl7_outbox ORDER BY id"))
        return [dict(row._mapping) for row in result]


def attempt_rows(db: Database) -> list[dict[str, Any]]:
    with db.reader.connect() as connection:
        result = connection.execute(sa.text("SELECT * FROM hl7_outbox_attempts ORDER BY id"))
        return [dict(row._mapping) for row in result]


def queued_order(db: Database) -> dict[str, list[str]]:
    """Each patient's control ids in the order they were queued."""
    order: dict[str, list[str]] = {}
    for row in outbox_rows(db):
        order.setdefault(row["patient_key"], []).append(row["control_id"])
    return order


def field_of(message: Any, segment: str, field_number: int, component: int = 1) -> str:
    return str(message.segment(segment).extract_field(field_num=field_number, component_num=component))


def parse(payload: str | bytes) -> Any:
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return hl7.parse(text)


# --- the receiver -------------------------------------------------------------------------------------------------

OK, AE, AR, DROP, APPLY_THEN_DROP, STALL, WRONG_ID, GARBAGE = (
    "ok", "AE", "AR", "drop", "apply_then_drop", "stall", "wrong_id", "garbage"
)  # fmt: skip
Script = Callable[[int, str], str]  # (frame number, MSH-10) -> what the receiver does with it


def ack(control_id: str, code: str = "AA", text: str = "") -> bytes:
    msh = f"MSH|^~\\&|BILLING|HOSP|OPEN-ADC|CAB-E|20261125143000||ACK^O13^ACK|R{random.randrange(10**9)}|P|2.5.1"
    return VT + f"{msh}\rMSA|{code}|{control_id}|{text}\r".encode() + FS + CR


@dataclass
class FlakyReceiver:
    script: Script
    expected_before: dict[str, str] = field(default_factory=dict)  # control id -> the one queued before it
    received: list[str] = field(default_factory=list)  # MSH-10 of every frame, in arrival order
    applied: dict[str, bytes] = field(default_factory=dict)
    applied_order: list[str] = field(default_factory=list)
    duplicates: int = 0
    violations: list[str] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def expect_order(self, queued: dict[str, list[str]]) -> None:
        for controls in queued.values():
            for before, after in itertools.pairwise(controls):
                self.expected_before[after] = before

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                block = await reader.readuntil(FS + CR)
                payload = block[block.index(VT) + 1 : -2]
                message = parse(payload)
                control = field_of(message, "MSH", 10)
                self._check_order(control)
                action = self.script(len(self.received), control)
                self.received.append(control)
                if action == DROP:
                    return
                if action == STALL:
                    await asyncio.sleep(3600)
                if action in (AE, AR):
                    writer.write(ack(control, action, "refused on cue"))
                    await writer.drain()
                    continue
                self._apply(control, payload)
                if action == APPLY_THEN_DROP:
                    return
                answer = {WRONG_ID: ack("SOMETHING-ELSE"), GARBAGE: VT + b"not an ack" + FS + CR}.get(action)
                writer.write(answer or ack(control))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    def _check_order(self, control: str) -> None:
        before = self.expected_before.get(control)
        if before is not None and before not in self.applied:
            self.violations.append(f"{control} arrived before {before} was applied")

    def _apply(self, control: str, payload: bytes) -> None:
        if control in self.applied:
            self.duplicates += 1
            if self.applied[control] != payload:
                self.violations.append(f"{control} was resent with different content")
            return
        self.applied[control] = payload
        self.applied_order.append(control)


def flaky_script(seed: int, *, max_refusals_each: int = 2) -> Script:
    """Every kind of trouble, drawn at random (seeded), after a clean start; a message is refused at most
    ``max_refusals_each`` times so none is parked."""
    rng = random.Random(seed)
    refused: dict[str, int] = {}
    choices = [OK] * 12 + [DROP, APPLY_THEN_DROP, AE, AR, STALL, WRONG_ID, GARBAGE]

    def script(number: int, control: str) -> str:
        if number < 3:
            return OK
        action = rng.choice(choices)
        if action in (AE, AR):
            refused[control] = refused.get(control, 0) + 1
            if refused[control] > max_refusals_each:
                return OK
        return action

    return script
