"""Restock, load and unload of one pocket by a technician, from one line of a pick list.

Responsible for: the ``RESTOCK`` privilege; a blind count-back of what is in the pocket before anything is added
or taken (a mismatch raises a discrepancy and the restock continues); each package scan, whose verdict the
scanner or vision layer has already decided (anything but a match is refused with ``inventory.item_mismatch`` and
recorded as a refused scan); lot and expiry required, expired lots refused (``workflow.lot_expired``) and short-dated
ones (``FsmSettings.short_dated_warning``, default 30 days) warned as an outcome; a package serial scanned twice is
refused; for controlled items the chain of custody (the vault or pharmacy source, and the witness when
``policies.witness_required`` lists ``CONTROLLED_RESTOCK``); and one ``STOCK_RESTOCKED`` / ``STOCK_LOADED`` /
``STOCK_UNLOADED`` outcome per lot with lot, expiry, serials and quantity.

Unloading takes stock out, so an expired lot is not refused there (unloading expired stock is the point).

Not responsible for: building the pick list from par levels, matching an NDC (the scanner layer), the drawer
(``compartment.py``), or writing anything.

Events (all take ``now``): ``begin``, ``count_entered(count)``, ``scanned(scan)``, ``finish``,
``witness_signed(signature)``, ``cancel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.medication import Medication
from controller.domain.policies import Policy, WitnessedAction, witness_required
from controller.domain.users import Privilege, User
from controller.fsm.base import (
    Decision,
    MachineSpec,
    OutcomeKind,
    WitnessSignature,
    Workflow,
    WorkflowPool,
    arg,
    now_of,
)
from controller.fsm.settings import FsmSettings

RESTOCK_WITNESS = WitnessedAction.CONTROLLED_RESTOCK.value


class RestockState(Enum):
    STARTED = "started"
    COUNT_BACK = "count_back"  # blind: what is in the pocket now
    SCANNING = "scanning"  # each package is scanned as it goes in (or comes out)
    AWAITING_WITNESS = "awaiting_witness"
    DONE = "done"
    CANCELLED = "cancelled"
    UNDOCUMENTED = "undocumented"  # its pocket was opened (or may have been) and the restock never finished


class RestockKind(StrEnum):
    RESTOCK = "restock"
    LOAD = "load"  # first stock of a newly assigned pocket
    UNLOAD = "unload"


class ScanVerdict(StrEnum):
    """What the scanner or vision layer decided about one package."""

    MATCH = "match"  # the pocket's item or one of its alternates
    WRONG_ITEM = "wrong_item"
    NOT_AN_NDC = "not_an_ndc"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class PackageScan:
    verdict: ScanVerdict
    ndc: str | None = None
    lot_number: str | None = None
    expiry: date | None = None
    serial: str | None = None
    quantity: int = 1  # units in the package


@dataclass(frozen=True, slots=True)
class PickLine:
    """One line of a pick list. ``expected_on_hand`` is never shown (the count-back is blind)."""

    kind: RestockKind
    medication: Medication
    pocket_id: str
    compartment_id: str
    expected_on_hand: int
    quantity: int  # suggested by par levels (to add, or to take out)
    source: str | None = None  # where the stock comes from: "vault:CII-1", "pharmacy" (chain of custody)


_OUTCOME = {
    RestockKind.RESTOCK: OutcomeKind.STOCK_RESTOCKED,
    RestockKind.LOAD: OutcomeKind.STOCK_LOADED,
    RestockKind.UNLOAD: OutcomeKind.STOCK_UNLOADED,
}

S = RestockState
BEFORE_DONE = [S.STARTED, S.COUNT_BACK, S.SCANNING, S.AWAITING_WITNESS]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "begin", "source": S.STARTED, "dest": S.COUNT_BACK, "conditions": ["guard_privilege", "guard_custody"]},
    {"trigger": "count_entered", "source": S.COUNT_BACK, "dest": S.SCANNING, "conditions": "guard_count",
     "after": "on_count"},
    {"trigger": "scanned", "source": S.SCANNING, "dest": None, "conditions": ["guard_scan", "guard_lot"],
     "after": "on_package"},
    {"trigger": "finish", "source": S.SCANNING, "dest": S.AWAITING_WITNESS,
     "conditions": ["guard_packages", "needs_witness"]},
    {"trigger": "finish", "source": S.SCANNING, "dest": S.DONE, "conditions": "guard_packages", "after": "on_done"},
    {"trigger": "witness_signed", "source": S.AWAITING_WITNESS, "dest": S.DONE, "conditions": "guard_signature",
     "after": ["on_signed", "on_done"]},
    {"trigger": "cancel", "source": BEFORE_DONE, "dest": S.CANCELLED, "after": "on_cancelled"},
    # Ended without its user (logoff, inactivity, a restart): nothing scanned is stocked; an opened pocket is an
    # undocumented access.
    {"trigger": "abandon", "source": BEFORE_DONE, "dest": S.UNDOCUMENTED, "conditions": "was_accessed",
     "after": "on_undocumented"},
    {"trigger": "abandon", "source": BEFORE_DONE, "dest": S.CANCELLED, "after": "on_cancelled"},
)  # fmt: skip

SPEC = MachineSpec(name="restock", states=RestockState, initial=S.STARTED, transitions=TRANSITIONS)


class Restock(Workflow):
    """One pick-list line worked by ``actor``."""

    spec = SPEC

    def __init__(self, restock_id: str, *, actor: User, line: PickLine, policy: Policy, settings: FsmSettings) -> None:
        super().__init__()
        self.id = restock_id
        self.actor = actor
        self.line = line
        self.policy = policy
        self.settings = settings
        self.counted: int | None = None
        self.packages: list[PackageScan] = []
        self.signature: WitnessSignature | None = None

    # --- typed entry points -------------------------------------------------------------------------------------

    def begin(self, *, now: datetime) -> Decision:
        return self.fire("begin", now=now)

    def count_entered(self, *, now: datetime, count: int) -> Decision:
        return self.fire("count_entered", now=now, count=count)

    def scanned(self, *, now: datetime, scan: PackageScan) -> Decision:
        return self.fire("scanned", now=now, scan=scan)

    def finish(self, *, now: datetime) -> Decision:
        return self.fire("finish", now=now)

    def witness_signed(self, *, now: datetime, signature: WitnessSignature | None) -> Decision:
        return self.fire("witness_signed", now=now, signature=signature)

    def cancel(self, *, now: datetime) -> Decision:
        return self.fire("cancel", now=now, reason="cancelled_by_user")

    def abandon(self, *, now: datetime, reason: str, accessed: bool) -> Decision:
        return self.fire("abandon", now=now, reason=reason, accessed=accessed)

    @property
    def is_finished(self) -> bool:
        return self.state in (S.DONE, S.CANCELLED, S.UNDOCUMENTED)

    @property
    def witness_required(self) -> bool:
        return witness_required(self.policy, WitnessedAction.CONTROLLED_RESTOCK, self.line.medication)

    @property
    def scanned_quantity(self) -> int:
        return sum(p.quantity for p in self.packages)

    def view(self) -> dict[str, Any]:
        """What the technician sees: the pick quantity, never the expected on-hand count."""
        return {
            "restock_id": self.id,
            "state": self.state.value,
            "kind": self.line.kind.value,
            "item_id": self.line.medication.id,
            "pocket_id": self.line.pocket_id,
            "pick_quantity": self.line.quantity,
            "scanned_quantity": self.scanned_quantity,
            "count_entered": self.counted is not None,
            "witness_required": self.witness_required,
        }

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_privilege(self, event: EventData) -> bool:
        if not self.actor.is_usable_at(now_of(event)):
            code = "auth.user_inactive" if not self.actor.active else "auth.user_expired"
            return self.refuse(code, f"user {self.actor.id}: account expired or deactivated", user=self.actor.id)
        if not self.actor.has(Privilege.RESTOCK):
            return self.refuse(
                "policy.privilege_missing",
                f"user {self.actor.id} does not hold the restock privilege",
                user=self.actor.id,
                privilege=Privilege.RESTOCK.value,
            )
        if self.line.medication.dea_schedule.is_schedule_ii and not self.actor.has(Privilege.ACCESS_SCHEDULE_II):
            return self.refuse(
                "policy.privilege_missing",
                f"user {self.actor.id} does not hold the schedule II privilege",
                user=self.actor.id,
                privilege=Privilege.ACCESS_SCHEDULE_II.value,
            )
        return True

    def guard_custody(self, event: EventData) -> bool:
        if self.line.medication.is_controlled and self.line.kind is not RestockKind.UNLOAD and not self.line.source:
            return self.refuse(
                "workflow.custody_required",
                f"name the vault or pharmacy source of this {self.line.medication.display_name}",
                item=self.line.medication.id,
            )
        return True

    def guard_count(self, event: EventData) -> bool:
        count = arg(event, "count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return self.refuse("workflow.invalid_quantity", f"a count is a whole number of zero or more: {count!r}")
        return True

    def guard_scan(self, event: EventData) -> bool:
        scan = arg(event, "scan")
        if not isinstance(scan, PackageScan) or scan.verdict is not ScanVerdict.MATCH:
            verdict = scan.verdict.value if isinstance(scan, PackageScan) else "no_scan"
            self.emit(
                OutcomeKind.SCAN_REFUSED,
                now_of(event),
                **self._fields(),
                lot_number=scan.lot_number if isinstance(scan, PackageScan) else None,
                reason_code=verdict,
                details={"restock_id": self.id, "ndc": scan.ndc if isinstance(scan, PackageScan) else None},
            )
            return self.refuse(
                "inventory.item_mismatch",
                f"the package is not {self.line.medication.display_name} for pocket {self.line.pocket_id} ({verdict})",
                pocket=self.line.pocket_id,
                verdict=verdict,
            )
        if isinstance(scan.quantity, bool) or not isinstance(scan.quantity, int) or scan.quantity < 1:
            return self.refuse("workflow.invalid_quantity", f"a package holds at least one unit: {scan.quantity!r}")
        if scan.serial is not None and any(p.serial == scan.serial for p in self.packages):
            return self.refuse(
                "workflow.duplicate_package", f"package serial {scan.serial} was already scanned", serial=scan.serial
            )
        return True

    def guard_lot(self, event: EventData) -> bool:
        scan: PackageScan = arg(event, "scan")
        if not scan.lot_number or scan.expiry is None:
            return self.refuse("workflow.lot_required", "the package's lot and expiry are needed (scan or enter them)")
        if self.line.kind is RestockKind.UNLOAD:
            return True
        today = now_of(event).date()
        if scan.expiry < today:
            self.emit(
                OutcomeKind.SCAN_REFUSED,
                now_of(event),
                **self._fields(),
                lot_number=scan.lot_number,
                reason_code="lot_expired",
                details={"restock_id": self.id, "expiry": scan.expiry.isoformat()},
            )
            return self.refuse(
                "workflow.lot_expired",
                f"lot {scan.lot_number} expired on {scan.expiry.isoformat()}",
                lot=scan.lot_number,
                expiry=scan.expiry.isoformat(),
            )
        return True

    def guard_packages(self, event: EventData) -> bool:
        if not self.packages:
            return self.refuse("workflow.nothing_scanned", "scan at least one package before finishing")
        return True

    def guard_signature(self, event: EventData) -> bool:
        return self.accept_signature(arg(event, "signature"), self.actor.id, RESTOCK_WITNESS)

    def needs_witness(self, event: EventData) -> bool:
        return self.witness_required

    def was_accessed(self, event: EventData) -> bool:
        return bool(arg(event, "accessed"))

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        return {"actor_id": self.actor.id, "item_id": self.line.medication.id, "pocket_id": self.line.pocket_id}

    def on_count(self, event: EventData) -> None:
        now = now_of(event)
        count: int = arg(event, "count")
        self.counted = count
        expected = self.line.expected_on_hand
        details = {"restock_id": self.id, "kind": self.line.kind.value}
        self.emit(OutcomeKind.COUNT_ENTERED, now, **self._fields(), quantity_expected=expected,
                  quantity_actual=count, reason_code="count_back", details=details)  # fmt: skip
        if count != expected:
            self.emit(OutcomeKind.DISCREPANCY_RAISED, now, **self._fields(), quantity_expected=expected,
                      quantity_actual=count, reason_code="count_back_mismatch", details=details)  # fmt: skip

    def on_package(self, event: EventData) -> None:
        now = now_of(event)
        scan: PackageScan = arg(event, "scan")
        self.packages.append(scan)
        assert scan.expiry is not None
        if self.line.kind is not RestockKind.UNLOAD and scan.expiry - now.date() <= self.settings.short_dated_warning:
            self.emit(
                OutcomeKind.SHORT_DATED,
                now,
                **self._fields(),
                lot_number=scan.lot_number,
                reason_code="short_dated",
                details={
                    "restock_id": self.id,
                    "expiry": scan.expiry.isoformat(),
                    "days_left": (scan.expiry - now.date()).days,
                },
            )

    def on_signed(self, event: EventData) -> None:
        self.signature = arg(event, "signature")

    def on_cancelled(self, event: EventData) -> None:
        self.emit(OutcomeKind.WORKFLOW_CANCELLED, now_of(event), **self._fields(), reason_code=arg(event, "reason"),
                  details={"restock_id": self.id, "workflow": "restock", "restock_kind": self.line.kind.value,
                           "state_before": self.state_before_event,
                           "scanned_not_stocked": len(self.packages)})  # fmt: skip

    def on_undocumented(self, event: EventData) -> None:
        self.emit(OutcomeKind.UNDOCUMENTED_ACCESS, now_of(event), **self._fields(),
                  quantity_expected=self.line.expected_on_hand, reason_code="undocumented_access",
                  details={"restock_id": self.id, "workflow_id": self.id, "workflow": "restock",
                           "restock_kind": self.line.kind.value, "state_before": self.state_before_event,
                           "ended_by": arg(event, "reason"), "scanned_not_stocked": len(self.packages)})  # fmt: skip

    def on_done(self, event: EventData) -> None:
        now = now_of(event)
        sign = -1 if self.line.kind is RestockKind.UNLOAD else 1
        lots: dict[tuple[str, date], list[PackageScan]] = {}
        for package in self.packages:
            assert package.lot_number is not None and package.expiry is not None
            lots.setdefault((package.lot_number, package.expiry), []).append(package)
        witness_id = self.signature.witness_id if self.signature else None
        for (lot_number, expiry), packages in lots.items():
            quantity = sum(p.quantity for p in packages)
            details: dict[str, Any] = {
                "restock_id": self.id,
                "expiry": expiry.isoformat(),
                "serials": [p.serial for p in packages if p.serial is not None],
                "ndcs": sorted({p.ndc for p in packages if p.ndc is not None}),
                "count_back": self.counted,
                "pick_quantity": self.line.quantity,
            }
            if self.line.medication.is_controlled:
                details["custody"] = {"source": self.line.source, "by": self.actor.id, "witness": witness_id}
            self.emit(
                _OUTCOME[self.line.kind],
                now,
                **self._fields(),
                witness_id=witness_id,
                lot_number=lot_number,
                quantity_change=sign * quantity,
                quantity_actual=quantity,
                details=details,
            )


class Restocks(WorkflowPool[Restock]):
    def __init__(self, policy: Policy | None = None, settings: FsmSettings | None = None) -> None:
        super().__init__(SPEC)
        self.policy = policy or Policy()
        self.settings = settings or FsmSettings()

    def start(self, restock_id: str, *, actor: User, line: PickLine) -> Restock:
        restock = Restock(restock_id, actor=actor, line=line, policy=self.policy, settings=self.settings)
        return self.adopt(restock_id, restock)
