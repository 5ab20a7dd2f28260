"""Pull (remove) one item for one patient: from choosing the patient to the closed drawer.

Responsible for: one patient at a time per session; authorising the removal through
``policies.authorise_removal`` (profiled order with its quantity cap, non-profiled, override list and reason,
critical-override mode); refusing a pocket blocked by the user's open controlled-substance discrepancy when
policy says so; the blind count when ``policies.blind_count_required`` says so (the expected number is held
privately and never appears in ``view()``; a mismatch raises a discrepancy and the pull continues or stops per
``stop_pull_on_count_mismatch``); an optional witness for configured schedules; issuing the ``UnlockGrant`` for
the compartment; cancel only before the drawer opens; after it opens, the user must close it and account for
what was taken (``take``, zero allowed); and the ``DOSE_REMOVED`` (plus ``OVERRIDE``) outcomes with actor,
witness, patient, order, item and pocket. A pull that ends without being closed out (``abandon``: logoff,
inactivity, shift end, a restart) after its pocket was opened, or may have been, ends ``undocumented``: a declared
take is still booked, and an ``UNDOCUMENTED_ACCESS`` discrepancy names the pocket, the user and the pull; a pull
ended before that, or cancelled, or whose unlock ran out unopened, leaves a ``WORKFLOW_CANCELLED`` entry.

Not responsible for: drug search (``policies.search_medications``), choosing the lot (FEFO is the inventory's),
the compartment's own state (``compartment.py``), the hardware, or writing anything.

Events (all take ``now``): ``select_patient(patient_id)``, ``select_item(item)``, ``count_entered(count)``,
``witness_signed(signature)``, ``unlock_requested(session)``, ``unlock_failed``, ``opened``, ``take(quantity)``,
``closed``, ``cancel``, ``package_scanned(scan, quarantined)`` (the removed package, when
``scan_removed_package`` is on: a wrong item, an expired or a quarantined lot is refused and recorded),
``unlock_expired`` (the hold ran out unopened), ``abandon(reason, accessed)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from transitions import EventData

from controller.domain.allergies import AllergyConflict
from controller.domain.medication import Medication
from controller.domain.patients import Order
from controller.domain.policies import (
    OverrideReason,
    Policy,
    RemovalAuthorisation,
    authorise_removal,
    blind_count_required,
)
from controller.domain.users import User
from controller.errors import SafetyError
from controller.fsm.base import (
    Decision,
    MachineSpec,
    Outcome,
    OutcomeKind,
    WitnessSignature,
    Workflow,
    WorkflowPool,
    arg,
    now_of,
)
from controller.fsm.compartment import UnlockGrant
from controller.fsm.session import Session
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.restock import PackageScan, ScanVerdict

REMOVAL_WITNESS = "controlled_removal"


class PullState(Enum):
    STARTED = "started"
    PATIENT_SELECTED = "patient_selected"
    BLIND_COUNT = "blind_count"
    AWAITING_WITNESS = "awaiting_witness"
    READY = "ready"
    UNLOCKING = "unlocking"
    OPEN = "open"
    TAKEN = "taken"
    CLOSED_UNACCOUNTED = "closed_unaccounted"  # closed before saying what was taken
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the compartment would not unlock, or was not opened in time; nothing was removed
    STOPPED = "stopped"  # blind count mismatch under a stopping policy; a discrepancy is open
    UNDOCUMENTED = "undocumented"  # ended without being closed out after an access: a discrepancy is open


@dataclass(frozen=True, slots=True)
class PullItem:
    """What the user chose and what the engine knows about it. ``expected_on_hand`` never reaches the UI."""

    medication: Medication
    pocket_id: str
    compartment_id: str
    expected_on_hand: int
    profiled_area: bool
    order: Order | None = None
    order_max_units: int | None = None
    override_reason: OverrideReason | None = None
    critical_override_mode: bool = False
    open_cs_discrepancy: bool = False  # this user has an open controlled-substance discrepancy on this pocket
    undocumented_access: bool = False  # the pocket has an open undocumented access: blocked until counted
    allergy_conflicts: tuple[AllergyConflict, ...] = ()  # the patient's recorded allergies this item touches
    allergies_acknowledged: bool = False  # the user confirmed the allergy warning on screen


P = PullState
TERMINAL = frozenset({P.DONE, P.CANCELLED, P.FAILED, P.STOPPED, P.UNDOCUMENTED})
BEFORE_UNLOCK = [P.STARTED, P.PATIENT_SELECTED, P.BLIND_COUNT, P.AWAITING_WITNESS, P.READY]
BEFORE_OPEN = [*BEFORE_UNLOCK, P.UNLOCKING]
AFTER_OPEN = [P.OPEN, P.TAKEN, P.CLOSED_UNACCOUNTED]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "select_patient", "source": [P.STARTED, P.PATIENT_SELECTED], "dest": P.PATIENT_SELECTED,
     "conditions": "guard_one_patient", "after": "on_patient"},
    {"trigger": "select_item", "source": P.PATIENT_SELECTED, "dest": P.BLIND_COUNT,
     "conditions": ["guard_authorised", "needs_blind_count"], "after": "on_item"},
    {"trigger": "select_item", "source": P.PATIENT_SELECTED, "dest": P.AWAITING_WITNESS,
     "conditions": ["guard_authorised", "needs_witness"], "after": "on_item"},
    {"trigger": "select_item", "source": P.PATIENT_SELECTED, "dest": P.READY, "conditions": "guard_authorised",
     "after": "on_item"},
    {"trigger": "count_entered", "source": P.BLIND_COUNT, "dest": P.STOPPED,
     "conditions": ["guard_count_valid", "stops_on_mismatch"], "after": "on_count"},
    {"trigger": "count_entered", "source": P.BLIND_COUNT, "dest": P.AWAITING_WITNESS,
     "conditions": ["guard_count_valid", "needs_witness"], "after": "on_count"},
    {"trigger": "count_entered", "source": P.BLIND_COUNT, "dest": P.READY, "conditions": "guard_count_valid",
     "after": "on_count"},
    {"trigger": "witness_signed", "source": P.AWAITING_WITNESS, "dest": P.READY, "conditions": "guard_signature",
     "after": "on_signed"},
    {"trigger": "unlock_requested", "source": P.READY, "dest": P.UNLOCKING, "conditions": "guard_session",
     "after": "on_unlock_requested"},
    {"trigger": "unlock_failed", "source": P.UNLOCKING, "dest": P.FAILED},
    {"trigger": "unlock_expired", "source": P.UNLOCKING, "dest": P.FAILED, "after": "on_expired"},
    {"trigger": "opened", "source": P.UNLOCKING, "dest": P.OPEN, "after": "on_opened"},
    {"trigger": "package_scanned", "source": P.OPEN, "dest": P.OPEN, "conditions": "guard_package",
     "after": "on_package"},
    {"trigger": "take", "source": P.OPEN, "dest": P.TAKEN, "conditions": "guard_quantity", "after": "on_take"},
    {"trigger": "take", "source": P.CLOSED_UNACCOUNTED, "dest": P.DONE, "conditions": "guard_quantity",
     "after": ["on_take", "on_done"]},
    {"trigger": "closed", "source": P.OPEN, "dest": P.CLOSED_UNACCOUNTED},
    {"trigger": "closed", "source": P.TAKEN, "dest": P.DONE, "after": "on_done"},
    {"trigger": "cancel", "source": BEFORE_OPEN, "dest": P.CANCELLED, "after": "on_cancelled"},
    {"trigger": "abandon", "source": BEFORE_UNLOCK, "dest": P.CANCELLED, "after": "on_cancelled"},
    {"trigger": "abandon", "source": P.UNLOCKING, "dest": P.UNDOCUMENTED, "conditions": "was_accessed",
     "after": "on_undocumented"},
    {"trigger": "abandon", "source": P.UNLOCKING, "dest": P.CANCELLED, "after": "on_cancelled"},
    {"trigger": "abandon", "source": AFTER_OPEN, "dest": P.UNDOCUMENTED, "after": "on_undocumented"},
)  # fmt: skip

SPEC = MachineSpec(
    name="pull",
    states=PullState,
    initial=P.STARTED,
    transitions=TRANSITIONS,
    refusals={(s, "cancel"): "workflow.cancel_after_open" for s in AFTER_OPEN},
)


class Pull(Workflow):
    """One removal by ``actor`` in session ``session_id``."""

    spec = SPEC

    def __init__(
        self, pull_id: str, pool: Pulls, *, actor: User, session_id: int, policy: Policy, settings: FsmSettings
    ) -> None:
        super().__init__()
        self.id = pull_id
        self.pool = pool
        self.actor = actor
        self.session_id = session_id
        self.policy = policy
        self.settings = settings
        self.patient_id: str | None = None
        self.item: PullItem | None = None
        self.authorisation: RemovalAuthorisation | None = None
        self.blind_count_required = False
        self.counted: int | None = None
        self.signature: WitnessSignature | None = None
        self.grant: UnlockGrant | None = None
        self.taken: int | None = None
        self.lot_number: str | None = None
        self.scanned: PackageScan | None = None  # the removed package, verified against the item
        self.started_at: datetime | None = None  # the first step
        self.opened_at: datetime | None = None  # when its pocket was opened

    # --- typed entry points -------------------------------------------------------------------------------------

    def select_patient(self, *, now: datetime, patient_id: str) -> Decision:
        return self.fire("select_patient", now=now, patient_id=patient_id)

    def select_item(self, *, now: datetime, item: PullItem) -> Decision:
        return self.fire("select_item", now=now, item=item)

    def count_entered(self, *, now: datetime, count: int) -> Decision:
        return self.fire("count_entered", now=now, count=count)

    def witness_signed(self, *, now: datetime, signature: WitnessSignature | None) -> Decision:
        return self.fire("witness_signed", now=now, signature=signature)

    def unlock_requested(self, *, now: datetime, session: Session) -> Decision:
        return self.fire("unlock_requested", now=now, session=session)

    def unlock_failed(self, *, now: datetime) -> Decision:
        return self.fire("unlock_failed", now=now)

    def opened(self, *, now: datetime) -> Decision:
        return self.fire("opened", now=now)

    def package_scanned(self, *, now: datetime, scan: PackageScan | None, quarantined: bool = False) -> Decision:
        return self.fire("package_scanned", now=now, scan=scan, quarantined=quarantined)

    def take(self, *, now: datetime, quantity: int, lot_number: str | None = None) -> Decision:
        return self.fire("take", now=now, quantity=quantity, lot_number=lot_number)

    def closed(self, *, now: datetime) -> Decision:
        return self.fire("closed", now=now)

    def cancel(self, *, now: datetime) -> Decision:
        return self.fire("cancel", now=now, reason="cancelled_by_user")

    def unlock_expired(self, *, now: datetime) -> Decision:
        return self.fire("unlock_expired", now=now)

    def abandon(self, *, now: datetime, reason: str, accessed: bool) -> Decision:
        """The pull ends without its user (``reason``: logoff, inactivity, shift_end, controller_restarted).
        ``accessed``: for a pull still unlocking, whether its pocket may have been opened (the board cannot tell,
        or its opening counter moved); a pull already opened was accessed whatever it says."""
        return self.fire("abandon", now=now, reason=reason, accessed=accessed)

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def witness_required(self) -> bool:
        return self.item is not None and self.item.medication.dea_schedule in self.settings.removal_witness_schedules

    def view(self) -> dict[str, Any]:
        """What the touchscreen may show. The expected count is deliberately absent (blind count)."""
        item = self.item
        return {
            "pull_id": self.id,
            "state": self.state.value,
            "actor_id": self.actor.id,
            "session_id": self.session_id,
            "patient_id": self.patient_id,
            "item_id": item.medication.id if item else None,
            "pocket_id": item.pocket_id if item else None,
            "blind_count_required": self.blind_count_required,
            "count_entered": self.counted is not None,
            "witness_required": self.witness_required,
            "max_quantity": self.authorisation.max_quantity if self.authorisation else None,
            "is_override": self.authorisation.is_override if self.authorisation else None,
            "warnings": _warnings(item) if item else [],
            "scan_required": self.settings.scan_removed_package,
            "package_scanned": self.scanned is not None,
        }

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_one_patient(self, event: EventData) -> bool:
        patient_id: str = arg(event, "patient_id")
        others = self.pool.active_patients(self.session_id, excluding=self)
        if others - {patient_id}:
            return self.refuse(
                "workflow.one_patient_at_a_time",
                f"finish the removal for {', '.join(sorted(others))} before starting {patient_id}",
                patient=patient_id,
            )
        return True

    def guard_authorised(self, event: EventData) -> bool:
        item: PullItem = arg(event, "item")
        if item.order is not None and item.order.patient_id != self.patient_id:
            return self.refuse(
                "policy.order_not_verified",
                f"order {item.order.id} is for another patient",
                order=item.order.id,
            )
        if item.undocumented_access:
            return self.refuse(
                "workflow.undocumented_access",
                f"{item.pocket_id} was accessed without being closed out; it is blocked until someone counts it "
                "(Count, then resolve the discrepancy)",
                pocket=item.pocket_id,
            )
        if item.open_cs_discrepancy and self.settings.open_cs_discrepancy_blocks_pulls:
            return self.refuse(
                "workflow.discrepancy_open",
                f"resolve the open discrepancy on {item.pocket_id} before removing from it",
                pocket=item.pocket_id,
            )
        try:
            authorisation = authorise_removal(
                self.policy,
                profiled_area=item.profiled_area,
                critical_override_mode=item.critical_override_mode,
                user=self.actor,
                medication=item.medication,
                order=item.order,
                override_reason=item.override_reason,
                order_max_units=item.order_max_units,
            )
        except SafetyError as error:
            return self.refuse_error(error)
        unverified = item.order is None or authorisation.is_override
        if item.allergy_conflicts and not item.allergies_acknowledged and unverified:
            # No pharmacist has weighed the allergy (override or non-profiled removal): the user must confirm it.
            allergens = sorted({c.allergen for c in item.allergy_conflicts})
            return self.refuse(
                "policy.allergy_not_acknowledged",
                "; ".join(c.message(item.medication) for c in item.allergy_conflicts)
                + ". Confirm the allergy warning to continue",
                allergens=allergens,
                item=item.medication.id,
            )
        self.authorisation = authorisation
        self.item = item
        self.blind_count_required = blind_count_required(self.policy, item.medication)
        return True

    def guard_count_valid(self, event: EventData) -> bool:
        count = arg(event, "count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return self.refuse("workflow.invalid_quantity", f"a count is a whole number of zero or more: {count!r}")
        return True

    def guard_signature(self, event: EventData) -> bool:
        return self.accept_signature(arg(event, "signature"), self.actor.id, REMOVAL_WITNESS)

    def guard_session(self, event: EventData) -> bool:
        session: Session = arg(event, "session")
        if not session.is_active or session.session_id != self.session_id or session.active_user_id != self.actor.id:
            return self.refuse("session.not_active", f"{self.actor.id}'s session that started this pull has ended")
        return True

    def guard_package(self, event: EventData) -> bool:
        """The removed package must be the item, from a lot that is neither expired nor quarantined."""
        scan = arg(event, "scan")
        assert self.item is not None
        today = now_of(event).date()
        if not isinstance(scan, PackageScan):
            problem, code = "no_scan", "inventory.item_mismatch"
        elif scan.verdict is not ScanVerdict.MATCH:
            problem, code = scan.verdict.value, "inventory.item_mismatch"
        elif scan.expiry is not None and scan.expiry < today:
            problem, code = "lot_expired", "workflow.lot_expired"
        elif arg(event, "quarantined"):
            problem, code = "lot_quarantined", "quarantine.lot_quarantined"
        else:
            return True
        self.emit(
            OutcomeKind.SCAN_REFUSED,
            now_of(event),
            **self._fields(),
            lot_number=scan.lot_number if isinstance(scan, PackageScan) else None,
            reason_code=problem,
            details={"pull_id": self.id, "ndc": scan.ndc if isinstance(scan, PackageScan) else None},
        )
        return self.refuse(
            code,
            f"the scanned package cannot be given as {self.item.medication.display_name} ({problem}); "
            "put it back and take another",
            pocket=self.item.pocket_id,
            verdict=problem,
        )

    def guard_quantity(self, event: EventData) -> bool:
        quantity = arg(event, "quantity")
        assert self.item is not None and self.authorisation is not None
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            return self.refuse("workflow.invalid_quantity", f"a quantity is a whole number: {quantity!r}")
        if self.settings.scan_removed_package and quantity > 0 and self.scanned is None:
            return self.refuse(
                "workflow.package_not_scanned",
                f"scan the {self.item.medication.display_name} package you removed before entering the quantity",
                pocket=self.item.pocket_id,
            )
        cap = self.authorisation.max_quantity
        if cap is not None and quantity > cap:
            return self.refuse(
                "workflow.quantity_exceeds_order", f"the order allows at most {cap}", maximum=cap, quantity=quantity
            )
        on_hand = self.counted if self.counted is not None else self.item.expected_on_hand
        if quantity > max(on_hand, self.item.expected_on_hand):
            return self.refuse("workflow.quantity_exceeds_order", "more than the pocket holds", quantity=quantity)
        return True

    # --- routing conditions -------------------------------------------------------------------------------------

    def needs_blind_count(self, event: EventData) -> bool:
        return self.blind_count_required

    def needs_witness(self, event: EventData) -> bool:
        return self.witness_required

    def was_accessed(self, event: EventData) -> bool:
        return bool(arg(event, "accessed"))

    def stops_on_mismatch(self, event: EventData) -> bool:
        assert self.item is not None
        return self.settings.stop_pull_on_count_mismatch and arg(event, "count") != self.item.expected_on_hand

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        item = self.item
        return {
            "actor_id": self.actor.id,
            "patient_id": self.patient_id,
            "order_id": item.order.id if item and item.order else None,
            "item_id": item.medication.id if item else None,
            "pocket_id": item.pocket_id if item else None,
        }

    def on_patient(self, event: EventData) -> None:
        self.patient_id = arg(event, "patient_id")
        if self.started_at is None:
            self.started_at = now_of(event)

    def on_opened(self, event: EventData) -> None:
        self.opened_at = now_of(event)

    def on_item(self, event: EventData) -> None:
        pass  # the guard stored the item and the authorisation once they passed

    def on_count(self, event: EventData) -> None:
        now = now_of(event)
        count: int = arg(event, "count")
        assert self.item is not None
        self.counted = count
        expected = self.item.expected_on_hand
        self.emit(
            OutcomeKind.COUNT_ENTERED,
            now,
            **self._fields(),
            quantity_expected=expected,
            quantity_actual=count,
            reason_code="blind_count",
            details={"pull_id": self.id},
        )
        if count != expected:
            self.emit(
                OutcomeKind.DISCREPANCY_RAISED,
                now,
                **self._fields(),
                quantity_expected=expected,
                quantity_actual=count,
                reason_code="blind_count_mismatch",
                details={"pull_id": self.id, "stopped": self.settings.stop_pull_on_count_mismatch},
            )

    def on_signed(self, event: EventData) -> None:
        self.signature = arg(event, "signature")

    def on_unlock_requested(self, event: EventData) -> None:
        assert self.item is not None
        self.grant = UnlockGrant(
            session_id=self.session_id,
            user_id=self.actor.id,
            compartment_id=self.item.compartment_id,
            purpose="pull",
            workflow_id=self.id,
        )

    def on_package(self, event: EventData) -> None:
        self.scanned = arg(event, "scan")

    def on_take(self, event: EventData) -> None:
        self.taken = arg(event, "quantity")
        self.lot_number = arg(event, "lot_number")

    def on_done(self, event: EventData) -> None:
        self._emit_removal(now_of(event))

    def on_cancelled(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.WORKFLOW_CANCELLED,
            now_of(event),
            **self._fields(),
            reason_code=arg(event, "reason"),
            details={"pull_id": self.id, "workflow": "pull", "state_before": self.state_before_event},
        )

    def on_expired(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.WORKFLOW_CANCELLED,
            now_of(event),
            **self._fields(),
            reason_code="not_opened_in_time",
            details={"pull_id": self.id, "workflow": "pull", "state_before": "unlocking"},
        )

    def on_undocumented(self, event: EventData) -> None:
        """The access is on record however it ended: a declared take is booked, and a discrepancy is raised that
        blocks the pocket until it is counted."""
        now = now_of(event)
        reason: str = arg(event, "reason")
        before = self.state_before_event
        if self.taken is not None:
            self._emit_removal(now, ended_by=reason)
        assert self.item is not None
        expected = self.item.expected_on_hand - (self.taken or 0)
        self.emit(
            OutcomeKind.UNDOCUMENTED_ACCESS,
            now,
            **self._fields(),
            quantity_expected=expected,
            reason_code="undocumented_access",
            details={"pull_id": self.id, "workflow": "pull", "state_before": before, "ended_by": reason,
                     "taken_declared": self.taken},
        )  # fmt: skip

    def _emit_removal(self, now: datetime, *, ended_by: str | None = None) -> None:
        assert self.item is not None and self.authorisation is not None and self.taken is not None
        fields = self._fields()
        details: dict[str, Any] = {
            "pull_id": self.id,
            "override": self.authorisation.is_override,
            "blind_count": self.counted,
            "session_id": self.session_id,
        }
        if ended_by is not None:
            details["ended_by"] = ended_by  # the drawer's closing was never seen: the declared take is booked
        if self.scanned is not None:
            scanned = self.scanned
            details["scanned"] = {"ndc": scanned.ndc, "lot": scanned.lot_number, "serial": scanned.serial}
        if self.item.allergy_conflicts:
            details["allergy_warnings"] = sorted({c.allergen for c in self.item.allergy_conflicts})
            details["allergies_acknowledged"] = self.item.allergies_acknowledged
        witness_id = self.signature.witness_id if self.signature else None
        self.emit(
            OutcomeKind.DOSE_REMOVED,
            now,
            **fields,
            witness_id=witness_id,
            lot_number=self.lot_number,
            quantity_change=-self.taken,
            quantity_actual=self.taken,
            reason_code=self.authorisation.reason.value if self.authorisation.reason else None,
            details=details,
        )
        if self.authorisation.is_override and self.taken > 0:
            self.emit(
                OutcomeKind.OVERRIDE,
                now,
                **fields,
                witness_id=witness_id,
                quantity_actual=self.taken,
                reason_code=self.authorisation.reason.value if self.authorisation.reason else "critical_override",
                details={"pull_id": self.id, "review": "pharmacist"},
            )


_FLAG_WARNINGS: tuple[tuple[str, str], ...] = (
    ("high_alert", "high-alert medication: double-check drug, dose and patient"),
    ("lasa", "look-alike / sound-alike name: check the label against the order"),
    ("neuromuscular_blocker", "paralysing agent: the patient stops breathing without ventilation"),
    ("hazardous", "hazardous drug (USP <800>): handle with protective equipment"),
)
_FLAG_CODES = {"lasa": "look_alike_sound_alike"}


def _warnings(item: PullItem) -> list[dict[str, Any]]:
    """What the screen shows before the drawer opens: the item's own flags, then the patient's allergies."""
    medication = item.medication
    warnings: list[dict[str, Any]] = [
        {"code": _FLAG_CODES.get(flag, flag), "message": message}
        for flag, message in _FLAG_WARNINGS
        if getattr(medication, flag)
    ]
    for conflict in item.allergy_conflicts:
        warnings.append(
            {
                "code": "allergy",
                "message": conflict.message(medication),
                "allergen": conflict.allergen,
                "matched": conflict.matched,
                "basis": conflict.basis.value,
            }
        )
    return warnings


class Pulls(WorkflowPool[Pull]):
    """Every pull in progress on a cabinet, on one shared machine; enforces one patient at a time per session."""

    def __init__(self, policy: Policy | None = None, settings: FsmSettings | None = None) -> None:
        super().__init__(SPEC)
        self.policy = policy or Policy()
        self.settings = settings or FsmSettings()

    def start(self, pull_id: str, *, actor: User, session_id: int) -> Pull:
        pull = Pull(pull_id, self, actor=actor, session_id=session_id, policy=self.policy, settings=self.settings)
        return self.adopt(pull_id, pull)

    def active_patients(self, session_id: int, *, excluding: Pull | None = None) -> set[str]:
        return {
            p.patient_id
            for p in self.by_id.values()
            if p is not excluding and p.session_id == session_id and not p.is_finished and p.patient_id is not None
        }


# --- after a restart ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullRecord:
    """A pull as the journal kept it (``controller.engine`` writes it at every step), enough to end it after a
    restart by the same rules as ``abandon``."""

    pull_id: str
    state: PullState
    actor_id: str
    session_id: int
    patient_id: str | None
    order_id: str | None
    item_id: str | None
    pocket_id: str | None
    expected_on_hand: int | None = None
    taken: int | None = None
    lot_number: str | None = None
    override: bool = False
    reason: str | None = None  # the override reason code
    blind_count: int | None = None
    witness_id: str | None = None
    scanned: dict[str, Any] | None = None


def recover_pull(record: PullRecord, *, now: datetime, accessed: bool) -> tuple[Outcome, ...]:
    """What a pull the controller lost to a restart leaves on the record. A pocket unlocked (``accessed``: the
    board counted an opening, or cannot tell) or opened and not closed out is an undocumented access, a declared
    take is booked; anything earlier is a cancellation."""
    fields: dict[str, Any] = {
        "actor_id": record.actor_id,
        "patient_id": record.patient_id,
        "order_id": record.order_id,
        "item_id": record.item_id,
        "pocket_id": record.pocket_id,
    }
    base = {"pull_id": record.pull_id, "workflow": "pull", "state_before": record.state.value,
            "ended_by": "controller_restarted"}  # fmt: skip
    undocumented = record.state in AFTER_OPEN or (record.state is P.UNLOCKING and accessed)
    if record.pocket_id is None or not undocumented:
        return (Outcome(OutcomeKind.WORKFLOW_CANCELLED, now, **fields, reason_code="controller_restarted",
                        details=base),)  # fmt: skip
    outcomes: list[Outcome] = []
    if record.state is P.TAKEN and record.taken is not None:
        details: dict[str, Any] = {"pull_id": record.pull_id, "override": record.override,
                                   "blind_count": record.blind_count, "session_id": record.session_id,
                                   "ended_by": "controller_restarted"}  # fmt: skip
        if record.scanned:
            details["scanned"] = record.scanned
        outcomes.append(Outcome(OutcomeKind.DOSE_REMOVED, now, **fields, witness_id=record.witness_id,
                                lot_number=record.lot_number, quantity_change=-record.taken,
                                quantity_actual=record.taken, reason_code=record.reason, details=details))  # fmt: skip
        if record.override and record.taken > 0:
            outcomes.append(Outcome(OutcomeKind.OVERRIDE, now, **fields, witness_id=record.witness_id,
                                    quantity_actual=record.taken, reason_code=record.reason or "critical_override",
                                    details={"pull_id": record.pull_id, "review": "pharmacist"}))  # fmt: skip
    expected = (record.expected_on_hand or 0) - (record.taken or 0)
    outcomes.append(Outcome(OutcomeKind.UNDOCUMENTED_ACCESS, now, **fields, quantity_expected=expected,
                            reason_code="undocumented_access",
                            details={**base, "taken_declared": record.taken}))  # fmt: skip
    return tuple(outcomes)
