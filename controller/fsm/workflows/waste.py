"""Waste: the unused part of a removed dose, recorded with an amount, a reason code and (when required) a witness.

Responsible for: the amount (greater than zero and at most what was removed) in the dose's own unit; a reason code
from ``WasteReason`` (never free text; a note may go with it); the witness when ``policies.witness_required`` says
so (``CONTROLLED_WASTE`` for controlled items, ``ANY_WASTE`` otherwise; ``Session.witness_sign`` has already
checked the witness is a licensed clinician through ``check_witness``); only the user who removed the dose
completes its waste; the pending-waste list (a waste deferred right after the pull, or whose witness step was
cancelled, is PENDING and never lost); the due time (``policies.end_of_shift`` of the removal) and escalation on
``tick`` past it; and the ``WASTE_RECORDED`` outcome naming actor, witness, amount, unit and reason.

Not responsible for: the pull it came from (``pull.py`` emits the removal), the witness's authentication
(``session.py``), destroying stock (DEA Form 41 is not a cabinet waste), or writing anything.

States: OPEN (just after the pull) -> AWAITING_WITNESS -> RECORDED, or -> PENDING / ESCALATED and back through
``enter``. There is no cancel: a waste once owed is recorded, or it escalates to pharmacy.

Events (all take ``now``): ``enter(user_id, amount, unit, reason, note)``, ``defer(user_id)``,
``witness_signed(signature)``, ``witness_cancelled``, ``tick``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.medication import Medication
from controller.domain.policies import Policy, WitnessedAction, end_of_shift, witness_required
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


class WasteState(Enum):
    OPEN = "open"  # right after the pull: amount and reason not entered yet
    AWAITING_WITNESS = "awaiting_witness"
    PENDING = "pending"  # on the user's pending-waste list
    ESCALATED = "escalated"  # not recorded by its due time; still recordable, pharmacy has been told
    RECORDED = "recorded"


class WasteReason(StrEnum):
    """Reason codes, so waste can be analysed (free-text reasons are a known diversion blind spot)."""

    PARTIAL_DOSE = "partial_dose"  # the order's dose is less than the package
    PATIENT_REFUSED = "patient_refused"
    ORDER_CHANGED = "order_changed"  # discontinued or changed after removal
    PREPARED_NOT_GIVEN = "prepared_not_given"
    CONTAMINATED = "contaminated"
    DROPPED_OR_BROKEN = "dropped_or_broken"


@dataclass(frozen=True, slots=True)
class RemovedDose:
    """What the pull removed and so what may be wasted from it. ``amount`` is in ``unit`` (e.g. 4 mg)."""

    medication: Medication
    amount: Decimal
    unit: str
    pocket_id: str
    pull_id: str | None = None
    patient_id: str | None = None
    order_id: str | None = None
    lot_number: str | None = None


W = WasteState
UNRECORDED = [W.OPEN, W.AWAITING_WITNESS, W.PENDING, W.ESCALATED]
ENTERABLE = [W.OPEN, W.PENDING, W.ESCALATED]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "enter", "source": ENTERABLE, "dest": W.AWAITING_WITNESS,
     "conditions": ["guard_owner", "guard_entry", "needs_witness"], "after": "on_entry"},
    {"trigger": "enter", "source": ENTERABLE, "dest": W.RECORDED, "conditions": ["guard_owner", "guard_entry"],
     "after": ["on_entry", "on_recorded"]},
    {"trigger": "defer", "source": W.OPEN, "dest": W.PENDING, "conditions": "guard_owner", "after": "on_deferred"},
    {"trigger": "witness_signed", "source": W.AWAITING_WITNESS, "dest": W.RECORDED, "conditions": "guard_signature",
     "after": ["on_signed", "on_recorded"]},
    # Cancelling the witness step keeps the waste: back on the pending list, or escalated if already overdue.
    {"trigger": "witness_cancelled", "source": W.AWAITING_WITNESS, "dest": W.ESCALATED, "conditions": "is_overdue",
     "after": ["on_witness_cancelled", "on_overdue"]},
    {"trigger": "witness_cancelled", "source": W.AWAITING_WITNESS, "dest": W.PENDING,
     "after": "on_witness_cancelled"},
    # tick: escalate once past the due time; a witness step in progress is left to finish (or be cancelled).
    {"trigger": "tick", "source": [W.OPEN, W.PENDING], "dest": W.ESCALATED, "conditions": "is_overdue",
     "after": "on_overdue"},
    {"trigger": "tick", "source": list(W), "dest": None},
)  # fmt: skip

SPEC = MachineSpec(
    name="waste",
    states=WasteState,
    initial=W.OPEN,
    transitions=TRANSITIONS,
)


class Waste(Workflow):
    """The waste owed on one removal by ``actor_id``, due by the end of the shift in which the dose was removed."""

    spec = SPEC

    def __init__(
        self, waste_id: str, *, actor_id: str, dose: RemovedDose, created_at: datetime, policy: Policy
    ) -> None:
        super().__init__()
        self.id = waste_id
        self.actor_id = actor_id
        self.dose = dose
        self.policy = policy
        self.created_at = created_at
        self.due = end_of_shift(policy, created_at)
        self.amount: Decimal | None = None
        self.unit: str | None = None
        self.reason: WasteReason | None = None
        self.note: str | None = None
        self.signature: WitnessSignature | None = None
        self.escalated_at: datetime | None = None
        self.recorded_at: datetime | None = None

    # --- typed entry points -------------------------------------------------------------------------------------

    def enter(
        self,
        *,
        now: datetime,
        user_id: str,
        amount: Decimal | int,
        unit: str,
        reason: WasteReason | str | None,
        note: str | None = None,
    ) -> Decision:
        return self.fire("enter", now=now, user_id=user_id, amount=amount, unit=unit, reason=reason, note=note)

    def defer(self, *, now: datetime, user_id: str) -> Decision:
        return self.fire("defer", now=now, user_id=user_id)

    def witness_signed(self, *, now: datetime, signature: WitnessSignature | None) -> Decision:
        return self.fire("witness_signed", now=now, signature=signature)

    def witness_cancelled(self, *, now: datetime) -> Decision:
        return self.fire("witness_cancelled", now=now)

    def tick(self, *, now: datetime) -> Decision:
        return self.fire("tick", now=now)

    @property
    def witness_action(self) -> str:
        """The action a witness signs for (``Session.witness_begin(action=...)``)."""
        controlled = self.dose.medication.is_controlled
        return (WitnessedAction.CONTROLLED_WASTE if controlled else WitnessedAction.ANY_WASTE).value

    @property
    def witness_required(self) -> bool:
        return witness_required(self.policy, WitnessedAction(self.witness_action), self.dose.medication)

    @property
    def is_pending(self) -> bool:
        """Still owed: shown on the user's pending-waste list."""
        return self.state in UNRECORDED

    def view(self) -> dict[str, Any]:
        return {
            "waste_id": self.id,
            "state": self.state.value,
            "item_id": self.dose.medication.id,
            "item_name": self.dose.medication.display_name,
            "pocket_id": self.dose.pocket_id,
            "patient_id": self.dose.patient_id,
            "removed_amount": str(self.dose.amount),
            "unit": self.dose.unit,
            "due": self.due.isoformat(),
            "witness_required": self.witness_required,
            "escalated": self.escalated_at is not None,
            "reasons": [r.value for r in WasteReason],
        }

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_owner(self, event: EventData) -> bool:
        user_id = arg(event, "user_id")
        if user_id != self.actor_id:
            return self.refuse(
                "workflow.not_owner",
                f"waste {self.id} is {self.actor_id}'s to record, not {user_id}'s",
                waste=self.id,
                user=user_id,
            )
        return True

    def guard_entry(self, event: EventData) -> bool:
        amount = arg(event, "amount")
        unit = arg(event, "unit")
        reason = arg(event, "reason")
        removed = self.dose.amount
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or not Decimal(amount).is_finite():
            return self.refuse("workflow.invalid_quantity", f"a waste amount is a number: {amount!r}")
        if not isinstance(unit, str) or unit.strip().casefold() != self.dose.unit.strip().casefold():
            return self.refuse(
                "workflow.unit_mismatch",
                f"waste is entered in the dose's unit, {self.dose.unit}; got {unit!r}",
                unit=str(unit),
                expected=self.dose.unit,
            )
        if not Decimal(0) < Decimal(amount) <= removed:
            return self.refuse(
                "workflow.invalid_quantity",
                f"the amount wasted must be more than 0 and at most the {removed} {self.dose.unit} removed",
                amount=str(amount),
                maximum=str(removed),
            )
        if _reason(reason) is None:
            return self.refuse(
                "workflow.reason_required",
                f"choose a waste reason: {', '.join(r.value for r in WasteReason)}",
                reason=None if reason is None else str(reason),
            )
        return True

    def guard_signature(self, event: EventData) -> bool:
        return self.accept_signature(arg(event, "signature"), self.actor_id, self.witness_action)

    # --- routing conditions -------------------------------------------------------------------------------------

    def needs_witness(self, event: EventData) -> bool:
        return self.witness_required

    def is_overdue(self, event: EventData) -> bool:
        return now_of(event) >= self.due

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "patient_id": self.dose.patient_id,
            "order_id": self.dose.order_id,
            "item_id": self.dose.medication.id,
            "pocket_id": self.dose.pocket_id,
            "lot_number": self.dose.lot_number,
        }

    def _details(self, **extra: Any) -> dict[str, Any]:
        details: dict[str, Any] = {
            "waste_id": self.id,
            "pull_id": self.dose.pull_id,
            "removed_amount": str(self.dose.amount),
            "due": self.due.isoformat(),
        }
        if self.amount is not None:
            details["amount"] = str(self.amount)
            details["unit"] = self.unit
        details.update(extra)
        return details

    def on_entry(self, event: EventData) -> None:
        self.amount = Decimal(arg(event, "amount"))
        self.unit = self.dose.unit
        self.reason = _reason(arg(event, "reason"))
        note = arg(event, "note")
        self.note = note.strip() or None if isinstance(note, str) else None
        self.signature = None

    def on_deferred(self, event: EventData) -> None:
        self.emit(OutcomeKind.WASTE_PENDING, now_of(event), **self._fields(), reason_code="deferred",
                  details=self._details())  # fmt: skip

    def on_witness_cancelled(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.WASTE_PENDING,
            now_of(event),
            **self._fields(),
            reason_code="witness_cancelled",
            details=self._details(waste_reason=self.reason.value if self.reason else None),
        )

    def on_overdue(self, event: EventData) -> None:
        if self.escalated_at is not None:
            return  # escalated once already: pharmacy knows
        now = now_of(event)
        self.escalated_at = now
        self.emit(
            OutcomeKind.WASTE_OVERDUE,
            now,
            **self._fields(),
            reason_code="waste_overdue",
            details=self._details(escalate_to="pharmacy"),
        )

    def on_signed(self, event: EventData) -> None:
        self.signature = arg(event, "signature")

    def on_recorded(self, event: EventData) -> None:
        now = now_of(event)
        assert self.amount is not None and self.reason is not None
        self.recorded_at = now
        self.emit(
            OutcomeKind.WASTE_RECORDED,
            now,
            **self._fields(),
            witness_id=self.signature.witness_id if self.signature else None,
            reason_code=self.reason.value,
            note=self.note,
            details=self._details(
                late=self.escalated_at is not None,
                partial=self.amount < self.dose.amount,
                controlled=self.dose.medication.is_controlled,
            ),
        )


def _reason(value: object) -> WasteReason | None:
    if isinstance(value, WasteReason):
        return value
    if isinstance(value, str):
        try:
            return WasteReason(value)
        except ValueError:
            return None
    return None


class Wastes(WorkflowPool[Waste]):
    """Every waste owed on a controller, on one shared machine; answers the pending-waste list of a user."""

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__(SPEC)
        self.policy = policy or Policy()

    def start(self, waste_id: str, *, actor_id: str, dose: RemovedDose, now: datetime) -> Waste:
        """A waste owed right after a pull (``now`` is the removal time; the due time follows from it)."""
        waste = Waste(waste_id, actor_id=actor_id, dose=dose, created_at=now, policy=self.policy)
        return self.adopt(waste_id, waste)

    def pending_for(self, user_id: str) -> list[Waste]:
        return pending_wastes(self.by_id.values(), user_id)

    def tick(self, *, now: datetime) -> list[Decision]:
        return [w.tick(now=now) for w in self.by_id.values() if w.is_pending]


def pending_wastes(wastes: Iterable[Waste], user_id: str) -> list[Waste]:
    """A user's pending-waste list: owed and not recorded, earliest due first."""
    return sorted((w for w in wastes if w.actor_id == user_id and w.is_pending), key=lambda w: (w.due, w.id))
