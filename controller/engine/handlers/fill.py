"""Counting-robot fill (pharmacy): scan the stock bottle, count (or dispense) N tablets into a vial over the wire, a
second count for schedule II, a ZPL label, and the fill as a ledger entry.

Responsible for: the order of the checks, each refusal recorded as one ``input.refused`` entry naming its rule:
who may fill (``restock`` privilege, schedule II privilege for CII); USP <800> hazardous tablets refused before
the counter moves (``policies.check_automatic_counting``); the stock bottle scanned and matched to the item, its
lot neither expired nor quarantined, lot and expiry on the scan (they go on the label); the count by the pill
counter or the dispense by the canister robot; for schedule II tablets (``policies.needs_double_count``) a
second, independent count before anything is labelled (``SecondCount``: the vial poured back into the hopper and
tallied by the counter, or the tray camera); a mismatch refused and recorded with both numbers; the label printed
and confirmed; the ``fill.completed`` entry last. A fill waiting for its second count is journaled: after a
restart it waits again, with its first count.

Not responsible for: the prescription itself (the caller passes the Rx number and the patient line of the label),
or stock of the pharmacy's bottles (they are not cabinet pockets, so a fill carries no quantity change).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from controller.domain.medication import Medication
from controller.domain.policies import check_automatic_counting, needs_double_count
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege
from controller.engine.commands.pharmacy import CancelFill, FillStep, SecondCount, StartFill
from controller.engine.context import EngineContext
from controller.engine.package_check import PackageCheck, PackageReading, check_package, read_package
from controller.engine.package_reader import device_missing, read_scan
from controller.engine.recording import AfterWrite, JournalEnd
from controller.engine.results import CommandResult
from controller.engine.tray_count import TrayImageCount
from controller.engine.workflows import Evidence, Handler, JournalKind, Reaction
from controller.errors import CommunicationError, ControllerError, DeviceFaultError, SafetyError, VerificationError
from controller.fsm.workflows.restock import ScanVerdict
from controller.hardware.pill_counter.interface import PillCounter
from controller.store.cabinet_store import CabinetWriter, JournalEntry
from controller.store.ledger import SealedEntry
from firmware_protocols.label_printer.codec import VialLabel, build_vial_label

KIND = JournalKind.FILL.value
TALLY_MARGIN = 50  # a tally counts towards quantity + this; the hopper runs out first at the true number


class SecondCounter(Protocol):
    """An independent second count of what is in the vial (the counter's tally, or the tray camera)."""

    name: str

    async def tally(self, expected: int, timeout_s: float) -> int: ...


@dataclass
class CounterTally:
    """The vial poured back into the hopper and counted again by the counter: a count to a target above what the
    vial can hold stops with ``device.hopper_empty`` at the number of tablets that were really there."""

    counter: PillCounter
    name: str = "counter_tally"

    async def tally(self, expected: int, timeout_s: float) -> int:
        try:
            result = await self.counter.count(expected + TALLY_MARGIN, timeout_s)
            counted = result.count  # the hopper held at least expected + margin: a gross mismatch
        except DeviceFaultError as error:
            if error.code != "device.hopper_empty":
                raise
            counted = (await self.counter.status()).count
        await self.counter.clear()
        return counted


@dataclass
class Fill:
    id: str
    command: StartFill
    medication: Medication
    reading: PackageReading
    first_count: int
    actor_id: str
    seqs: list[int] = field(default_factory=list)


class FillHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext, second_counter: SecondCounter | None = None) -> None:
        self.ctx = ctx
        counter = ctx.devices.counter
        self.second_counter = second_counter or (CounterTally(counter) if counter is not None else None)
        self.waiting: dict[str, Fill] = {}
        r = ctx.registry
        r.add(self)
        r.command(StartFill, self.start)
        r.command(SecondCount, self.second_count)
        r.command(CancelFill, self.cancel)

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.waiting

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, "fill_id": f.id, "item_id": f.medication.id, "state": "awaiting_second_count"}
                for f in self.waiting.values()]  # fmt: skip

    # --- recording ----------------------------------------------------------------------------------------------

    def _record(self, event_type: EventType, kind: str, command: StartFill, *journal: Any,
                then: AfterWrite | None = None, **fields: Any) -> int:  # fmt: skip
        user = self.ctx.session.user
        details = {"kind": kind, "occurred_at": self.ctx.now().isoformat(), "rx_number": command.rx_number,
                   **fields.pop("details", {})}  # fmt: skip
        record = LedgerRecord(event_type=event_type, actor_id=user.id if user else None, item_id=command.item_id,
                              details=details, **fields)  # fmt: skip
        return self.ctx.recorder.commit(record, journal=list(journal), then=then)[0].seq

    def _refuse(self, command: StartFill, error: ControllerError, *journal: Any, **details: Any) -> CommandResult[Any]:
        seq = self._record(EventType.INPUT_REFUSED, "fill.refused", command, *journal, reason_code=error.code,
                           details={"refusal": error.detail, **details})  # fmt: skip
        return CommandResult.from_error(error, ledger_seqs=[seq])

    # --- commands -----------------------------------------------------------------------------------------------

    async def start(self, command: StartFill) -> CommandResult[FillStep]:
        ctx = self.ctx
        if self.waiting:
            waiting = next(iter(self.waiting))
            return CommandResult.refuse("fsm.event_not_allowed", f"fill {waiting} is waiting for its second count")
        user = ctx.user()
        with ctx.store.read() as reader:
            medication = reader.medication(command.item_id)
        if medication is None:
            return CommandResult.refuse("engine.item_not_stocked", f"no item {command.item_id}", item=command.item_id)
        if isinstance(command.quantity, bool) or not 1 <= command.quantity <= 9999:
            return CommandResult.refuse("workflow.invalid_quantity", f"fill 1 to 9999 tablets, not {command.quantity}")
        missing = [p for p in (Privilege.RESTOCK,) if not user.has(p)]
        if medication.dea_schedule.is_schedule_ii and not user.has(Privilege.ACCESS_SCHEDULE_II):
            missing.append(Privilege.ACCESS_SCHEDULE_II)
        if missing:
            error = SafetyError("policy.privilege_missing", f"user {user.id} may not fill {medication.display_name}",
                                user=user.id, privilege=missing[0].value)  # fmt: skip
            return self._refuse(command, error)
        try:
            check_automatic_counting(medication)  # before the counter (or the scanner) is even asked
        except SafetyError as error:
            return self._refuse(command, error)
        devices = ctx.devices
        device = "pill counter" if command.canister is None else "canister robot"
        if (
            devices.scanner is None
            or devices.printer is None
            or (devices.counter if command.canister is None else devices.robot) is None
        ):
            raise device_missing("scanner, label printer and " + device)
        scan = await read_scan(devices.scanner, 5.0)
        with ctx.store.read() as reader:
            check = check_package(reader, read_package(scan), medication, today=ctx.now().date(),
                                  short_dated_warning=ctx.rules.machines.short_dated_warning)  # fmt: skip
        problem = _bottle_problem(check, medication)
        if problem is not None:
            return self._refuse(command, problem, scan=check.view())
        try:
            if command.canister is None:
                assert devices.counter is not None
                counted = (await devices.counter.count(command.quantity, command.timeout_s)).count
                await devices.counter.clear()
            else:
                assert devices.robot is not None
                counted = (await devices.robot.dispense(command.canister, command.quantity)).dispensed
        except (DeviceFaultError, CommunicationError) as error:
            return self._refuse(command, error, stage="first_count")
        fill = Fill(f"FILL-{uuid.uuid4().hex[:12]}", command, medication, check.reading, counted, user.id)
        if needs_double_count(medication):

            def journal(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
                # Journaled in the same transaction, with the first count's seq: a restart resumes with both.
                fill.seqs.append(sealed[0].seq)
                tx.write_journal(self._journal(fill))

            seq = self._record(EventType.COUNT_ENTERED, "fill.first_count", command, then=journal,
                               quantity_expected=command.quantity, quantity_actual=counted,
                               lot_number=check.reading.lot_number, reason_code="robot_fill_first_count",
                               details={"fill_id": fill.id, "device": device})  # fmt: skip
            self.waiting[fill.id] = fill
            second_counter = self.second_counter.name if self.second_counter else None
            return CommandResult.done(FillStep(fill.id, "awaiting_second_count", (seq,), second_counter=second_counter,
                                               next="pour the vial back into the hopper for the schedule II second "
                                               "count"))  # fmt: skip
        return await self._label_and_record(fill, counted, second=None)

    async def second_count(self, command: SecondCount) -> CommandResult[FillStep]:
        fill = self.waiting.get(command.fill_id)
        if fill is None:
            return CommandResult.refuse("engine.no_workflow", f"no fill {command.fill_id} is waiting for a second "
                                        "count")  # fmt: skip
        second_counter = self.second_counter
        if command.by_camera:
            if self.ctx.devices.camera is None:
                raise device_missing("camera")
            second_counter = TrayImageCount(self.ctx.devices.camera)
        if second_counter is None:
            raise device_missing("second counter")
        try:
            tallied = await second_counter.tally(fill.first_count, command.timeout_s)
        except (DeviceFaultError, CommunicationError, VerificationError) as error:
            # The fill keeps waiting for its second count: a new capture or a recount may follow.
            return self._refuse(fill.command, error, stage="second_count", fill_id=fill.id)
        if tallied != fill.first_count:
            del self.waiting[fill.id]
            seq = self._record(EventType.DISCREPANCY_RAISED, "fill.count_mismatch", fill.command,
                               JournalEnd(fill.id, "count_mismatch"), quantity_expected=fill.first_count,
                               quantity_actual=tallied, lot_number=fill.reading.lot_number,
                               reason_code="fill_double_count_mismatch",
                               details={"fill_id": fill.id, "second_counter": second_counter.name})  # fmt: skip
            return CommandResult(False, FillStep(fill.id, "count_mismatch", (seq,)), "fill.count_mismatch",
                                 f"first count {fill.first_count}, second count {tallied}: the vial is not labelled",
                                 {"first": fill.first_count, "second": tallied})  # fmt: skip
        del self.waiting[fill.id]
        return await self._label_and_record(fill, fill.first_count, second=tallied, method=second_counter.name)

    async def cancel(self, command: CancelFill) -> CommandResult[FillStep]:
        fill = self.waiting.pop(command.fill_id, None)
        if fill is None:
            return CommandResult.refuse("engine.no_workflow", f"no fill {command.fill_id} is in progress")
        seq = self._record(EventType.INPUT_REFUSED, "fill.cancelled", fill.command, JournalEnd(fill.id, "cancelled"),
                           reason_code="cancelled", details={"fill_id": fill.id})  # fmt: skip
        return CommandResult.done(FillStep(fill.id, "cancelled", (seq,)))

    async def _label_and_record(self, fill: Fill, counted: int, second: int | None,
                                method: str | None = None) -> CommandResult[FillStep]:  # fmt: skip
        r = fill.reading
        printer = self.ctx.devices.printer
        assert r.lot_number is not None and r.expiry is not None and printer is not None
        m = fill.medication
        label = VialLabel(drug_name=m.display_name, strength=m.strength, ndc=str(m.ndc), lot=r.lot_number,
                          expiry=r.expiry, count=counted, unit=m.unit, patient=fill.command.patient_label,
                          rx_number=fill.command.rx_number)  # fmt: skip
        end = JournalEnd(fill.id, "done")
        try:
            await printer.print_label(build_vial_label(label))
        except (DeviceFaultError, CommunicationError) as error:
            return self._refuse(fill.command, error, end, stage="label", fill_id=fill.id)
        seq = self._record(
            EventType.VIAL_FILLED, "fill.completed", fill.command, end,
            quantity_expected=fill.command.quantity, quantity_actual=counted, lot_number=r.lot_number,
            reason_code="robot_fill",
            details={"fill_id": fill.id, "ndc10": r.ndc10, "expiry": r.expiry.isoformat(), "serial": r.serial,
                     "canister": fill.command.canister, "second_count": second, "second_count_by": method,
                     "patient_label": fill.command.patient_label},
        )  # fmt: skip
        return CommandResult.done(FillStep(fill.id, "filled", (*fill.seqs, seq), count=counted))

    # --- after a restart ----------------------------------------------------------------------------------------

    def _journal(self, fill: Fill) -> JournalEntry:
        c, r = fill.command, fill.reading
        return JournalEntry(
            workflow_id=fill.id, kind=KIND, actor_id=fill.actor_id, session_id=self.ctx.session.session_id,
            state="awaiting_second_count", started_at=self.ctx.now(), item_id=c.item_id,
            details={"quantity": c.quantity, "rx_number": c.rx_number, "patient_label": c.patient_label,
                     "canister": c.canister, "first_count": fill.first_count, "ndc10": r.ndc10, "lot": r.lot_number,
                     "expiry": r.expiry.isoformat() if r.expiry else None, "serial": r.serial, "seqs": fill.seqs},
        )  # fmt: skip

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        """A fill waiting for its second count waits again (its first count is in the ledger)."""
        d = entry.details
        with self.ctx.store.read() as reader:
            medication = reader.medication(entry.item_id or "")
        if medication is None:
            return Reaction(journal=[JournalEnd(entry.workflow_id, "recovered")])
        command = StartFill(medication.id, int(d["quantity"]), str(d["rx_number"]), str(d["patient_label"]),
                            canister=d.get("canister"))  # fmt: skip
        reading = PackageReading("", "", ndc10=d.get("ndc10"), lot_number=d.get("lot"),
                                 expiry=date.fromisoformat(d["expiry"]) if d.get("expiry") else None,
                                 serial=d.get("serial"))  # fmt: skip
        fill = Fill(entry.workflow_id, command, medication, reading, int(d["first_count"]), entry.actor_id,
                    list(d.get("seqs", [])))  # fmt: skip
        self.waiting[fill.id] = fill
        return Reaction()


def _bottle_problem(check: PackageCheck, medication: Medication) -> ControllerError | None:
    r = check.reading
    if check.verdict is not ScanVerdict.MATCH:
        return SafetyError("inventory.item_mismatch", f"the scanned bottle is not {medication.display_name} "
                           f"({check.verdict.value})", verdict=check.verdict.value, item=medication.id)  # fmt: skip
    if not r.lot_number or r.expiry is None:
        return SafetyError("workflow.lot_required", "scan the bottle's GS1 DataMatrix: its lot and expiry go on the "
                           "label")  # fmt: skip
    if check.expired:
        return SafetyError("workflow.lot_expired", f"lot {r.lot_number} expired on {r.expiry.isoformat()}",
                           lot=r.lot_number)  # fmt: skip
    if check.quarantined:
        return SafetyError("quarantine.lot_quarantined", f"lot {r.lot_number} is quarantined", lot=r.lot_number)
    return None
