"""Commands of a pull (one dose for one patient), each naming the pull it is for; and its payload.

Several pulls may be alive at once (one patient at a time still holds): each step finds its pull by ``pull_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.domain.policies import OverrideReason
from controller.engine.commands.base import Answers, Returns
from controller.engine.results import Payload


@dataclass(frozen=True, slots=True)
class PullStep(Payload):
    """Where a pull stands after a step: ``pull`` is its view (never the expected count), ``unlocked`` the
    compartments released for it by this step, ``scan`` the verdict of a removed-package scan."""

    pull: Mapping[str, Any]
    state: str
    ledger_seqs: tuple[int, ...] = ()
    unlocked: tuple[str, ...] = ()
    scan: Mapping[str, Any] | None = None

    @property
    def pull_id(self) -> str:
        return str(self.pull["pull_id"])


@dataclass(frozen=True, slots=True)
class PullList(Payload):
    pulls: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class StartPull(Returns[PullStep]):
    patient_id: str


@dataclass(frozen=True, slots=True)
class SelectItem(Returns[PullStep]):
    """Against an order (``order_id``), or by override (``item_id`` and ``override_reason``), or in a
    non-profiled area by ``item_id`` alone. ``pocket_id`` picks one pocket when several hold the item.
    ``acknowledge_allergies``: the user confirmed the patient's allergy warning (needed without a verified order)."""

    pull_id: str
    order_id: str | None = None
    item_id: str | None = None
    override_reason: OverrideReason | None = None
    pocket_id: str | None = None
    acknowledge_allergies: bool = False


@dataclass(frozen=True, slots=True)
class EnterCount(Returns[PullStep]):
    pull_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ScanRemoved(Returns[PullStep]):
    """Scan the package just taken from the open pocket (required when ``FsmSettings.scan_removed_package``), with
    the hand scanner or, ``by_camera``, in front of the cabinet's camera."""

    pull_id: str
    timeout_s: float = 5.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class Take(Returns[PullStep]):
    """How many units were taken; zero is a valid answer (the nurse took nothing)."""

    pull_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CancelPull(Returns[PullStep]):
    """Cancel before the pocket opened: it is locked again and the cancel is recorded."""

    pull_id: str


@dataclass(frozen=True, slots=True)
class GetPull(Answers[PullStep]):
    pull_id: str


@dataclass(frozen=True, slots=True)
class ListPulls(Answers[PullList]):
    """The pulls alive at the cabinet (``session_id``: only that session's)."""

    session_id: int | None = None


@dataclass(frozen=True, slots=True)
class MedicationMatches(Payload):
    """What a drug search found: the formulary items and, for each, the pockets of this cabinet holding it."""

    unique: bool
    matches: tuple[tuple[Any, tuple[str, ...]], ...]  # (Medication, pocket ids)

    def to_data(self) -> dict[str, Any]:
        return {"unique": self.unique, "matches": [{"item_id": m.id, "pocket_ids": list(p)} for m, p in self.matches]}


@dataclass(frozen=True, slots=True)
class SearchMedications(Answers[MedicationMatches]):
    """Search the formulary by the start of any word of a name: fewer than the rules' minimum characters (ISMP: 5)
    is refused (``policy.search_too_short``)."""

    text: str
