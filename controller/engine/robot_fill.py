"""Counting-robot fill (pharmacy): scan the stock bottle, count (or dispense) N tablets into a vial over the wire, a
second count for schedule II, a ZPL label, and the fill as a ledger entry.

Responsible for: the order of the checks, each refusal recorded as one ``input.refused`` entry naming its rule:
who may fill (``restock`` privilege, schedule II privilege for CII); USP <800> hazardous tablets refused before
the counter moves (``policies.check_automatic_counting``); the stock bottle scanned and matched to the item
(``package_scan``), its lot not expired nor quarantined, lot and expiry on the scan (they go on the label); the
count by the pill counter or the dispense by the canister robot; for schedule II tablets
(``policies.needs_double_count``) a second, independent count before anything is labelled (``SecondCount``: the
vial is poured back into the hopper and the counter tallies it: a count to a target it cannot reach stops with
the hopper empty at the true number; ``SecondCounter`` is the seam where the tray-camera count of issue 5 plugs
in), a mismatch refused (``fill.count_mismatch``) and recorded with both numbers; the label printed and confirmed
by the printer (a printer fault refuses the fill and nothing is recorded as filled); the fill entry last, as a
``fill.completed`` entry (``EventType.VIAL_FILLED``) with the count, lot, expiry, serial and second count.

Not responsible for: the prescription itself (the caller passes the Rx number and the patient line of the label),
or stock of the pharmacy's bottles (they are not cabinet pockets, so a fill carries no quantity change).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from controller.domain.medication import Medication
from controller.domain.policies import check_automatic_counting, needs_double_count
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege
from controller.engine.commands import CommandResult
from controller.engine.commands_pharmacy import CancelFill, SecondCount, StartFill
from controller.engine.counts import CountWorkflow
from controller.engine.package_scan import PackageCheck, read_package
from controller.engine.quarantine import QuarantineWorkflow
from controller.engine.restock import RestockWorkflow, device_missing, read_scan
from controller.engine.tray_count import TrayImageCount
from controller.errors import CommunicationError, ControllerError, DeviceFaultError, SafetyError, VerificationError
from controller.fsm.workflows.restock import ScanVerdict
from controller.hardware.label_printer.interface import LabelPrinter
from controller.hardware.pill_counter.interface import CanisterRobot, PillCounter
from controller.hardware.scanner.interface import Scanner
from controller.store import engine_state as state
from firmware_protocols.label_printer.codec import VialLabel, build_vial_label

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine

TALLY_MARGIN = 50  # a tally counts towards quantity + this; the hopper runs out first at the true number


class CountingRobot(PillCounter, CanisterRobot, Protocol):
    """A pill counter with a canister robot (the simulator's and ``PillCounterDriver``)."""


class SecondCounter(Protocol):
    """An independent second count of what is in the vial (the counter's tally now; the tray camera, issue 5)."""

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
    check: PackageCheck
    first_count: int
    state: str = "awaiting_second_count"
    seqs: list[int] = field(default_factory=list)


class RobotFillWorkflow:
    def __init__(
        self,
        engine: CabinetEngine,
        *,
        scanner: Scanner | None,
        counter: PillCounter | None,
        robot: CanisterRobot | None,
        printer: LabelPrinter | None,
        second_counter: SecondCounter | None = None,
    ) -> None:
        self.engine = engine
        self.scanner = scanner
        self.counter = counter
        self.robot = robot
        self.printer = printer
        self.second_counter = second_counter or (CounterTally(counter) if counter is not None else None)
        self.current: Fill | None = None

    def register(self) -> None:
        self.engine.register(StartFill, self.start)
        self.engine.register(SecondCount, self.second_count)
        self.engine.register(CancelFill, self.cancel)

    # --- recording -------------------------------------------------------------------------------------------------

    def _record(self, event_type: EventType, kind: str, command: StartFill, **fields: Any) -> int:
        user = self.engine.session.user
        details = {
            "kind": kind,
            "occurred_at": self.engine.clock.now().isoformat(),
            "rx_number": command.rx_number,
            **fields.pop("details", {}),
        }
        record = LedgerRecord(
            event_type=event_type,
            actor_id=user.id if user else None,
            item_id=command.item_id,
            details=details,
            **fields,
        )
        with self.engine.db.write() as session:
            return self.engine.ledger.append(session, record).seq

    def _refuse(self, command: StartFill, error: ControllerError, **details: Any) -> CommandResult:
        seq = self._record(
            EventType.INPUT_REFUSED,
            "fill.refused",
            command,
            reason_code=error.code,
            details={"refusal": error.detail, **details},
        )
        return CommandResult.from_error(error, ledger_seqs=[seq])

    # --- commands --------------------------------------------------------------------------------------------------

    async def start(self, command: StartFill) -> CommandResult:
        e = self.engine
        if self.current is not None:
            return CommandResult.refuse(
                "fsm.event_not_allowed", f"fill {self.current.id} is waiting for its second count"
            )
        user = e.session.user
        assert user is not None
        with e.db.read() as session:
            medication = state.get_medication(session, command.item_id)
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
        device = "pill counter" if command.canister is None else "canister robot"
        if (
            self.scanner is None
            or self.printer is None
            or (self.counter if command.canister is None else self.robot) is None
        ):
            return device_missing("scanner, label printer and " + device)
        scan = await read_scan(self.scanner, 5.0)
        check = e.judge_package(read_package(scan), medication)
        problem = self._bottle_problem(check, medication)
        if problem is not None:
            return self._refuse(command, problem, scan=check.view())
        try:
            if command.canister is None:
                assert self.counter is not None
                counted = (await self.counter.count(command.quantity, command.timeout_s)).count
                await self.counter.clear()
            else:
                assert self.robot is not None
                counted = (await self.robot.dispense(command.canister, command.quantity)).dispensed
        except (DeviceFaultError, CommunicationError) as error:
            return self._refuse(command, error, stage="first_count")
        fill = Fill(f"FILL-{uuid.uuid4().hex[:12]}", command, medication, check, counted)
        if needs_double_count(medication):
            seq = self._record(
                EventType.COUNT_ENTERED,
                "fill.first_count",
                command,
                quantity_expected=command.quantity,
                quantity_actual=counted,
                lot_number=check.reading.lot_number,
                reason_code="robot_fill_first_count",
                details={"fill_id": fill.id, "device": device},
            )
            fill.seqs.append(seq)
            self.current = fill
            return CommandResult.success(
                fill_id=fill.id,
                state=fill.state,
                next="pour the vial back into the hopper for the schedule II second count",
                second_counter=self.second_counter.name if self.second_counter else None,
                ledger_seqs=[seq],
            )
        return await self._label_and_record(fill, counted, second=None)

    def _bottle_problem(self, check: PackageCheck, medication: Medication) -> ControllerError | None:
        r = check.reading
        if check.verdict is not ScanVerdict.MATCH:
            return SafetyError(
                "inventory.item_mismatch",
                f"the scanned bottle is not {medication.display_name} ({check.verdict.value})",
                verdict=check.verdict.value,
                item=medication.id,
            )
        if not r.lot_number or r.expiry is None:
            return SafetyError(
                "workflow.lot_required", "scan the bottle's GS1 DataMatrix: its lot and expiry go on the label"
            )
        if check.expired:
            return SafetyError("workflow.lot_expired", f"lot {r.lot_number} expired on {r.expiry.isoformat()}",
                               lot=r.lot_number)  # fmt: skip
        if check.quarantined:
            return SafetyError("quarantine.lot_quarantined", f"lot {r.lot_number} is quarantined", lot=r.lot_number)
        return None

    async def second_count(self, command: SecondCount) -> CommandResult:
        fill = self.current
        if fill is None:
            return CommandResult.refuse("engine.no_workflow", "no fill is waiting for a second count")
        second_counter = self.second_counter
        if command.by_camera:
            if self.engine.camera is None:
                return device_missing("camera")
            second_counter = TrayImageCount(self.engine.camera)
        if second_counter is None:
            return device_missing("second counter")
        try:
            tallied = await second_counter.tally(fill.first_count, command.timeout_s)
        except (DeviceFaultError, CommunicationError, VerificationError) as error:
            # The fill keeps waiting for its second count: a new capture or a recount may follow.
            return self._refuse(fill.command, error, stage="second_count", fill_id=fill.id)
        if tallied != fill.first_count:
            self.current = None
            seq = self._record(
                EventType.DISCREPANCY_RAISED,
                "fill.count_mismatch",
                fill.command,
                quantity_expected=fill.first_count,
                quantity_actual=tallied,
                lot_number=fill.check.reading.lot_number,
                reason_code="fill_double_count_mismatch",
                details={"fill_id": fill.id, "second_counter": second_counter.name},
            )
            return CommandResult(
                False,
                {"fill_id": fill.id, "ledger_seqs": [seq]},
                "fill.count_mismatch",
                f"first count {fill.first_count}, second count {tallied}: the vial is not labelled",
                {"first": fill.first_count, "second": tallied},
            )
        result = await self._label_and_record(fill, fill.first_count, second=tallied, method=second_counter.name)
        self.current = None
        return result

    async def cancel(self, command: CancelFill) -> CommandResult:
        fill = self.current
        if fill is None:
            return CommandResult.refuse("engine.no_workflow", "no fill is in progress")
        self.current = None
        seq = self._record(EventType.INPUT_REFUSED, "fill.cancelled", fill.command, reason_code="cancelled",
                           details={"fill_id": fill.id})  # fmt: skip
        return CommandResult.success(fill_id=fill.id, state="cancelled", ledger_seqs=[seq])

    async def _label_and_record(
        self, fill: Fill, counted: int, second: int | None, method: str | None = None
    ) -> CommandResult:
        r = fill.check.reading
        assert r.lot_number is not None and r.expiry is not None and self.printer is not None
        m = fill.medication
        label = VialLabel(
            drug_name=m.display_name,
            strength=m.strength,
            ndc=str(m.ndc),
            lot=r.lot_number,
            expiry=r.expiry,
            count=counted,
            unit=m.unit,
            patient=fill.command.patient_label,
            rx_number=fill.command.rx_number,
        )
        try:
            await self.printer.print_label(build_vial_label(label))
        except (DeviceFaultError, CommunicationError) as error:
            self.current = None
            return self._refuse(fill.command, error, stage="label", fill_id=fill.id)
        seq = self._record(
            EventType.VIAL_FILLED,
            "fill.completed",
            fill.command,
            quantity_expected=fill.command.quantity,
            quantity_actual=counted,
            lot_number=r.lot_number,
            reason_code="robot_fill",
            details={
                "fill_id": fill.id,
                "ndc10": r.ndc10,
                "expiry": r.expiry.isoformat(),
                "serial": r.serial,
                "canister": fill.command.canister,
                "second_count": second,
                "second_count_by": method,
                "patient_label": fill.command.patient_label,
            },
        )
        fill.state = "filled"
        return CommandResult.success(fill_id=fill.id, state="filled", count=counted, ledger_seqs=[*fill.seqs, seq])


@dataclass(frozen=True, slots=True)
class PharmacyWorkflows:
    """The pharmacy workflows of one engine, built and registered in one step (``CabinetEngine.__init__``)."""

    restock: RestockWorkflow
    counts: CountWorkflow
    quarantine: QuarantineWorkflow
    robot_fill: RobotFillWorkflow

    @classmethod
    def register(
        cls,
        engine: CabinetEngine,
        *,
        scanner: Scanner | None,
        counter: CountingRobot | None,
        printer: LabelPrinter | None,
    ) -> PharmacyWorkflows:
        workflows = cls(
            RestockWorkflow(engine, scanner),
            CountWorkflow(engine),
            QuarantineWorkflow(engine),
            RobotFillWorkflow(engine, scanner=scanner, counter=counter, robot=counter, printer=printer),
        )
        for workflow in (workflows.restock, workflows.counts, workflows.quarantine, workflows.robot_fill):
            workflow.register()
        return workflows
