"""Return: a removed dose that was not given goes back, by default to the one-way return bin.

Responsible for: the destination (the return bin, which pharmacy collects and counts; the original pocket only
for a sealed, non-controlled item and only when ``FsmSettings.return_sealed_to_pocket`` allows); the quantity
(a whole number more than zero and at most what was removed); the witness for a controlled return when
``policies.witness_required`` lists ``CONTROLLED_RETURN``; cancel before the deposit; and the ``DOSE_RETURNED``
outcome (a stock movement: ``pocket_id`` is where the dose went, the bin's or the original pocket's).

Not responsible for: unlocking the bin or pocket (the engine, with ``compartment.py``), the credit message to
billing, pharmacy's count of the bin, or writing anything.

Events (all take ``now``): ``choose(destination, quantity)``, ``witness_signed(signature)``, ``deposited``,
``cancel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.medication import Medication
from controller.domain.policies import Policy, WitnessedAction, witness_required
from controller.domain.users import User
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

RETURN_WITNESS = WitnessedAction.CONTROLLED_RETURN.value


class ReturnState(Enum):
    STARTED = "started"
    AWAITING_WITNESS = "awaiting_witness"
    READY = "ready"  # destination chosen (and witnessed): the engine opens the bin or pocket
    DONE = "done"
    CANCELLED = "cancelled"
    UNDOCUMENTED = "undocumented"  # its pocket was unlocked (and maybe opened) and the return never confirmed


class ReturnDestination(StrEnum):
    RETURN_BIN = "return_bin"  # one-way: nothing comes back out at the cabinet
    ORIGINAL_POCKET = "original_pocket"


@dataclass(frozen=True, slots=True)
class ReturnItem:
    """The dose being returned and where it may go. ``sealed`` is the user's (or scanner's) answer."""

    medication: Medication
    quantity_removed: int
    origin_pocket_id: str
    return_bin_pocket_id: str
    sealed: bool
    lot_number: str | None = None
    patient_id: str | None = None
    order_id: str | None = None
    pull_id: str | None = None


R = ReturnState
BEFORE_DEPOSIT = [R.STARTED, R.AWAITING_WITNESS, R.READY]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "choose", "source": R.STARTED, "dest": R.AWAITING_WITNESS,
     "conditions": ["guard_quantity", "guard_destination", "needs_witness"], "after": "on_choose"},
    {"trigger": "choose", "source": R.STARTED, "dest": R.READY,
     "conditions": ["guard_quantity", "guard_destination"], "after": "on_choose"},
    {"trigger": "witness_signed", "source": R.AWAITING_WITNESS, "dest": R.READY, "conditions": "guard_signature",
     "after": "on_signed"},
    {"trigger": "deposited", "source": R.READY, "dest": R.DONE, "after": "on_deposited"},
    {"trigger": "cancel", "source": BEFORE_DEPOSIT, "dest": R.CANCELLED, "after": "on_cancelled"},
    # The user's session ended (or the controller restarted) with the pocket unlocked for the return.
    {"trigger": "abandon", "source": R.READY, "dest": R.UNDOCUMENTED, "conditions": "was_accessed",
     "after": "on_undocumented"},
    {"trigger": "abandon", "source": [R.STARTED, R.READY], "dest": R.CANCELLED, "after": "on_cancelled"},
)  # fmt: skip

SPEC = MachineSpec(
    name="return",
    states=ReturnState,
    initial=R.STARTED,
    transitions=TRANSITIONS,
    refusals={(R.DONE, "cancel"): "workflow.cancel_after_open"},
)


class Return(Workflow):
    """One return of ``item`` by ``actor``."""

    spec = SPEC

    def __init__(self, return_id: str, *, actor: User, item: ReturnItem, policy: Policy, settings: FsmSettings) -> None:
        super().__init__()
        self.id = return_id
        self.actor = actor
        self.item = item
        self.policy = policy
        self.settings = settings
        self.destination: ReturnDestination | None = None
        self.quantity: int | None = None
        self.signature: WitnessSignature | None = None
        self.expected_on_hand: int | None = None  # the pocket's stock when it was unlocked for the return

    # --- typed entry points -------------------------------------------------------------------------------------

    def choose(
        self, *, now: datetime, quantity: int, destination: ReturnDestination = ReturnDestination.RETURN_BIN
    ) -> Decision:
        return self.fire("choose", now=now, quantity=quantity, destination=destination)

    def witness_signed(self, *, now: datetime, signature: WitnessSignature | None) -> Decision:
        return self.fire("witness_signed", now=now, signature=signature)

    def deposited(self, *, now: datetime) -> Decision:
        return self.fire("deposited", now=now)

    def cancel(self, *, now: datetime) -> Decision:
        return self.fire("cancel", now=now, reason="cancelled_by_user")

    def abandon(self, *, now: datetime, reason: str, accessed: bool) -> Decision:
        """Ended without its user; ``accessed``: its pocket was opened, or may have been (the board cannot tell)."""
        return self.fire("abandon", now=now, reason=reason, accessed=accessed, expected=self.expected_on_hand)

    @property
    def witness_required(self) -> bool:
        return witness_required(self.policy, WitnessedAction.CONTROLLED_RETURN, self.item.medication)

    @property
    def may_return_to_pocket(self) -> bool:
        return self.settings.return_sealed_to_pocket and self.item.sealed and not self.item.medication.is_controlled

    @property
    def target_pocket_id(self) -> str | None:
        if self.destination is None:
            return None
        if self.destination is ReturnDestination.ORIGINAL_POCKET:
            return self.item.origin_pocket_id
        return self.item.return_bin_pocket_id

    def view(self) -> dict[str, Any]:
        return {
            "return_id": self.id,
            "state": self.state.value,
            "item_id": self.item.medication.id,
            "destinations": [ReturnDestination.RETURN_BIN.value]
            + ([ReturnDestination.ORIGINAL_POCKET.value] if self.may_return_to_pocket else []),
            "witness_required": self.witness_required,
            "max_quantity": self.item.quantity_removed,
        }

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_quantity(self, event: EventData) -> bool:
        quantity = arg(event, "quantity")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= self.item.quantity_removed
        ):
            return self.refuse(
                "workflow.invalid_quantity",
                f"return between 1 and the {self.item.quantity_removed} removed: {quantity!r}",
                quantity=str(quantity),
            )
        return True

    def guard_destination(self, event: EventData) -> bool:
        destination = arg(event, "destination")
        if destination == ReturnDestination.RETURN_BIN:
            return True
        if destination == ReturnDestination.ORIGINAL_POCKET and self.may_return_to_pocket:
            return True
        why = (
            "controlled substances always go to the return bin"
            if self.item.medication.is_controlled
            else "an opened package goes to the return bin"
            if not self.item.sealed
            else "policy sends every return to the return bin"
        )
        return self.refuse("workflow.return_to_pocket_refused", why, destination=str(destination))

    def guard_signature(self, event: EventData) -> bool:
        return self.accept_signature(arg(event, "signature"), self.actor.id, RETURN_WITNESS)

    def needs_witness(self, event: EventData) -> bool:
        return self.witness_required

    def was_accessed(self, event: EventData) -> bool:
        return self.destination is ReturnDestination.ORIGINAL_POCKET and bool(arg(event, "accessed"))

    # --- callbacks ----------------------------------------------------------------------------------------------

    def on_choose(self, event: EventData) -> None:
        self.quantity = arg(event, "quantity")
        self.destination = ReturnDestination(arg(event, "destination"))

    def on_signed(self, event: EventData) -> None:
        self.signature = arg(event, "signature")

    def _fields(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor.id,
            "patient_id": self.item.patient_id,
            "order_id": self.item.order_id,
            "item_id": self.item.medication.id,
        }

    def on_cancelled(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.WORKFLOW_CANCELLED,
            now_of(event),
            **self._fields(),
            pocket_id=self.target_pocket_id,
            reason_code=arg(event, "reason"),
            details={"return_id": self.id, "pull_id": self.item.pull_id, "workflow": "return",
                     "state_before": self.state_before_event},
        )  # fmt: skip

    def on_undocumented(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.UNDOCUMENTED_ACCESS,
            now_of(event),
            **self._fields(),
            pocket_id=self.item.origin_pocket_id,
            quantity_expected=arg(event, "expected"),
            reason_code="undocumented_access",
            details={"return_id": self.id, "pull_id": self.item.pull_id, "workflow_id": self.id,
                     "workflow": "return", "state_before": self.state_before_event,
                     "ended_by": arg(event, "reason"), "returning": self.quantity},
        )  # fmt: skip

    def on_deposited(self, event: EventData) -> None:
        assert self.quantity is not None and self.destination is not None
        self.emit(
            OutcomeKind.DOSE_RETURNED,
            now_of(event),
            actor_id=self.actor.id,
            witness_id=self.signature.witness_id if self.signature else None,
            patient_id=self.item.patient_id,
            order_id=self.item.order_id,
            item_id=self.item.medication.id,
            pocket_id=self.target_pocket_id,
            lot_number=self.item.lot_number,
            quantity_change=self.quantity,
            quantity_actual=self.quantity,
            reason_code=self.destination.value,
            details={
                "return_id": self.id,
                "pull_id": self.item.pull_id,
                "destination": self.destination.value,
                "origin_pocket_id": self.item.origin_pocket_id,
                "sealed": self.item.sealed,
                "controlled": self.item.medication.is_controlled,
            },
        )


class Returns(WorkflowPool[Return]):
    def __init__(self, policy: Policy | None = None, settings: FsmSettings | None = None) -> None:
        super().__init__(SPEC)
        self.policy = policy or Policy()
        self.settings = settings or FsmSettings()

    def start(self, return_id: str, *, actor: User, item: ReturnItem) -> Return:
        ret = Return(return_id, actor=actor, item=item, policy=self.policy, settings=self.settings)
        return self.adopt(return_id, ret)
