"""Commands of the clinical workflows after a pull: witness sign-off, waste, return, discrepancy, override review;
each naming the workflow it is for; and their payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from controller.domain.policies import OverrideReviewOutcome
from controller.engine.commands.base import Answers, Returns
from controller.engine.results import Payload

View = Mapping[str, Any]


class WitnessFor(StrEnum):
    """What a witness step is for: the action waiting for the second person."""

    PULL = "pull"  # a pull in AWAITING_WITNESS (``FsmSettings.removal_witness_schedules``)
    WASTE = "waste"
    RETURN = "return"
    DISCREPANCY = "discrepancy"  # a resolution waiting for its witness
    RESTOCK = "restock"  # a controlled restock in AWAITING_WITNESS


# --- payloads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WitnessBegun(Payload):
    state: str
    witness_step: View


@dataclass(frozen=True, slots=True)
class WitnessSigned(Payload):
    """The witness signed; ``target`` is what the witnessed workflow did next."""

    witness_id: str
    target: Payload

    def to_data(self) -> dict[str, Any]:
        return {**self.target.to_data(), "witness_id": self.witness_id}


@dataclass(frozen=True, slots=True)
class WitnessCancelled(Payload):
    state: str
    cancelled: View
    ledger_seqs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WasteStep(Payload):
    state: str
    waste: View
    ledger_seqs: tuple[int, ...] = ()
    pending_waste_row: int | None = None
    witness_step: View | None = None


@dataclass(frozen=True, slots=True)
class PendingWastes(Payload):
    wastes: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class PendingWork(Payload):
    """What a user still owes at the cabinet: wastes, and actions waiting for a witness."""

    wastes: tuple[View, ...]
    witness_steps: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class ReturnStep(Payload):
    state: str
    ret: View
    return_id: str
    ledger_seqs: tuple[int, ...] = ()
    witness_step: View | None = None
    unlocked: str | None = None


@dataclass(frozen=True, slots=True)
class DiscrepancyStep(Payload):
    state: str
    discrepancy: View
    ledger_seqs: tuple[int, ...] = ()
    witness_step: View | None = None


@dataclass(frozen=True, slots=True)
class DiscrepancyList(Payload):
    discrepancies: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class OverrideReviewed(Payload):
    review: int
    outcome: str
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OverrideReviewList(Payload):
    reviews: tuple[View, ...]


# --- witness --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BeginWitness(Returns[WitnessBegun]):
    """Start (or start again after a cancel) the witness step of ``target_id`` (a pull, waste, return,
    discrepancy or restock id) waiting for one."""

    kind: WitnessFor
    target_id: str


@dataclass(frozen=True, slots=True)
class SignWitness(Returns[WitnessSigned]):
    """The witness authenticates at the cabinet (PIN and/or badge) for the open witness step."""

    user_id: str
    pin: str | None = None
    badge: str | None = None


@dataclass(frozen=True, slots=True)
class CancelWitness(Returns[WitnessCancelled]):
    """Stop the open witness step; the action it was for is kept (a waste goes to the pending list)."""


# --- waste ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WasteDose(Returns[WasteStep]):
    """Waste ``amount`` ``unit`` of the dose pull ``pull_id`` removed, or of the pending waste ``waste_id`` (one of
    the two). ``reason`` is a ``WasteReason`` value."""

    amount: Decimal | int
    unit: str
    reason: str | None
    note: str | None = None
    pull_id: str | None = None
    waste_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeferWaste(Returns[WasteStep]):
    """Put the waste of pull ``pull_id`` on the user's pending-waste list (due by the end of the shift)."""

    pull_id: str


@dataclass(frozen=True, slots=True)
class ListPendingWastes(Answers[PendingWastes]):
    """``user_id``'s pending-waste list, earliest due first."""

    user_id: str


@dataclass(frozen=True, slots=True)
class ListPendingWork(Answers[PendingWork]):
    """Everything ``user_id`` still owes: pending wastes and actions waiting for a witness."""

    user_id: str


# --- return ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnDose(Returns[ReturnStep]):
    """Return ``quantity`` units of what pull ``pull_id`` removed: to the return bin (default) or, for a sealed
    non-controlled item when policy allows, to the original pocket."""

    pull_id: str
    quantity: int
    destination: str = "return_bin"
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class ConfirmReturn(Returns[ReturnStep]):
    """The user has put the dose back in its original pocket (after the pocket was unlocked for the return)."""

    return_id: str


@dataclass(frozen=True, slots=True)
class CancelReturn(Returns[ReturnStep]):
    return_id: str


# --- discrepancies and reviews --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolveDiscrepancy(Returns[DiscrepancyStep]):
    """The logged-in user resolves a discrepancy with a ``DiscrepancyReason``; a witness signs when required."""

    discrepancy_id: str
    reason: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewDiscrepancy(Returns[DiscrepancyStep]):
    """The logged-in pharmacist reviews (closes) a resolved discrepancy."""

    discrepancy_id: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListDiscrepancies(Answers[DiscrepancyList]):
    """Discrepancies of this cabinet not yet reviewed."""


@dataclass(frozen=True, slots=True)
class ReviewOverride(Returns[OverrideReviewed]):
    """The logged-in pharmacist closes one override review with an outcome (and a note for a follow-up)."""

    review_id: int
    outcome: OverrideReviewOutcome
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListOverrideReviews(Answers[OverrideReviewList]):
    """Override removals of this cabinet waiting for pharmacist review, oldest first."""
