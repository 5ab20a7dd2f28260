"""The commands of the clinical workflows after a pull: witness sign-off, waste, return and discrepancy.

Typed records only; ``witness.py``, ``waste.py``, ``returns.py`` and ``discrepancies.py`` run them (registered on
the ``CabinetEngine``). Every one of them returns a ``CommandResult`` and runs only with an active session.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from controller.domain.policies import OverrideReviewOutcome


class WitnessFor(StrEnum):
    """What a witness step is for: the action waiting for the second person."""

    PULL = "pull"  # a pull in AWAITING_WITNESS (``FsmSettings.removal_witness_schedules``)
    WASTE = "waste"
    RETURN = "return"
    DISCREPANCY = "discrepancy"  # a resolution waiting for its witness
    RESTOCK = "restock"  # a controlled restock in AWAITING_WITNESS (``restock.py`` joins the desk)


@dataclass(frozen=True, slots=True)
class BeginWitness:
    """Start (or start again after a cancel) the witness step of an action waiting for one. ``target_id`` is
    the waste, return or discrepancy id; for a pull it is the current pull and may be left out."""

    kind: WitnessFor
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class SignWitness:
    """The witness authenticates at the cabinet (PIN and/or badge) for the open witness step."""

    user_id: str
    pin: str | None = None
    badge: str | None = None


@dataclass(frozen=True, slots=True)
class CancelWitness:
    """Stop the open witness step; the action it was for is kept (a waste goes to the pending list)."""


@dataclass(frozen=True, slots=True)
class WasteDose:
    """Waste ``amount`` ``unit`` of a removed dose: of the pull ``pull_id`` (the session's last pull when both
    ids are None), or of the pending waste ``waste_id``. ``reason`` is a ``WasteReason`` value."""

    amount: Decimal | int
    unit: str
    reason: str | None
    note: str | None = None
    pull_id: str | None = None
    waste_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeferWaste:
    """Put the waste of a pull on the user's pending-waste list (due by the end of the shift)."""

    pull_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListPendingWastes:
    """The logged-in user's pending-waste list, earliest due first."""


@dataclass(frozen=True, slots=True)
class ReturnDose:
    """Return ``quantity`` units of what a pull removed: to the return bin (default) or, for a sealed
    non-controlled item when policy allows, to the original pocket."""

    quantity: int
    pull_id: str | None = None
    destination: str = "return_bin"
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class ConfirmReturn:
    """The user has put the dose back in its original pocket (after the pocket was unlocked for the return)."""

    return_id: str


@dataclass(frozen=True, slots=True)
class CancelReturn:
    return_id: str


@dataclass(frozen=True, slots=True)
class ResolveDiscrepancy:
    """The logged-in user resolves a discrepancy with a ``DiscrepancyReason``; a witness signs when required."""

    discrepancy_id: str
    reason: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewDiscrepancy:
    """The logged-in pharmacist reviews (closes) a resolved discrepancy."""

    discrepancy_id: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListOverrideReviews:
    """Override removals of this cabinet waiting for pharmacist review, oldest first."""


@dataclass(frozen=True, slots=True)
class ReviewOverride:
    """The logged-in pharmacist closes one override review with an outcome (and a note for a follow-up)."""

    review_id: int
    outcome: OverrideReviewOutcome
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListDiscrepancies:
    """Discrepancies of this cabinet not yet reviewed."""


ClinicalCommand = (
    BeginWitness
    | SignWitness
    | CancelWitness
    | WasteDose
    | DeferWaste
    | ListPendingWastes
    | ListOverrideReviews
    | ReviewOverride
    | ReturnDose
    | ConfirmReturn
    | CancelReturn
    | ResolveDiscrepancy
    | ReviewDiscrepancy
    | ListDiscrepancies
)
