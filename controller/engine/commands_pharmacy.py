"""Commands of the pharmacy workflows (restock, counts, quarantine, critical override, robot fill), as typed
records. Each is registered on the engine by its workflow module and returns a ``CommandResult``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controller.fsm.workflows.count import CountKind
from controller.fsm.workflows.restock import RestockKind

# --- restock / load / unload ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowPickList:
    """Pockets at or below their minimum, with the quantity that brings each back to par (never above max)."""


@dataclass(frozen=True, slots=True)
class StartRestock:
    """Work one pocket: the pocket is unlocked, then a blind count-back. ``quantity`` defaults to the pick
    list's suggestion; ``source`` is the chain-of-custody origin ("vault:CII-1") of controlled stock."""

    pocket_id: str
    kind: RestockKind = RestockKind.RESTOCK
    quantity: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class CountBack:
    count: int


@dataclass(frozen=True, slots=True)
class ScanPackage:
    """Read the next package from the scanner (over the wire), or from a camera frame (``by_camera``), and check
    it against the pocket."""

    units: int = 1  # units in the package
    timeout_s: float = 5.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class FinishRestock:
    pass


@dataclass(frozen=True, slots=True)
class CancelRestock:
    pass


@dataclass(frozen=True, slots=True)
class SignRestockWitness:
    """A second person signs, at the cabinet, for the controlled restock waiting in awaiting_witness (PIN and/or
    badge): the witness step is opened if it is not, and signed."""

    user_id: str
    pin: str | None = None
    badge: str | None = None


# --- counts --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartCount:
    """A blind count. ``pocket_ids`` None: every controlled pocket of the cabinet. The first pocket is unlocked;
    each of the others is unlocked once the one before it is counted."""

    kind: CountKind = CountKind.SHIFT_CHANGE
    pocket_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EnterPocketCount:
    """What the person sees in the open pocket (blind: the expected number is never shown)."""

    pocket_id: str
    count: int


@dataclass(frozen=True, slots=True)
class UnlockCountPocket:
    """Unlock the count's next pocket again (its unlock failed, or the hold ran out before it was opened)."""


@dataclass(frozen=True, slots=True)
class StopCount:
    pass


# --- quarantine and downtime ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecallLot:
    """A manufacturer or FDA recall: block ``lot_number`` of the item carrying ``ndc`` everywhere."""

    ndc: str  # printed ("0409-1891-01") or bare 10 digits
    lot_number: str
    reason: str = "recall"


class QuarantineDecision(StrEnum):
    RELEASE = "release"  # back into service: the lot is usable (pullable) again
    DESTROY = "destroy"  # stays blocked until it is unloaded and destroyed (or returned as the recall says)


class QuarantineReviewReason(StrEnum):
    """Why a pharmacist decided as they did (reason codes, not free text; the note says more)."""

    WITHIN_STABILITY_DATA = "within_stability_data"  # the maker's stability data covers the excursion
    OUTSIDE_STABILITY_DATA = "outside_stability_data"  # beyond it, or no data for that temperature and time
    RECALL_WITHDRAWN = "recall_withdrawn"  # the maker or FDA withdrew the recall (the note names the notice)
    RECALLED = "recalled"  # the recall stands


@dataclass(frozen=True, slots=True)
class ReviewQuarantine:
    """A pharmacist reviews one quarantined lot (``quarantine_id`` from the recall, the excursion or
    ``ListQuarantines``): release it, or destroy it. ``reason`` is a ``QuarantineReviewReason`` value."""

    quarantine_id: int
    decision: QuarantineDecision
    reason: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuarantines:
    """Lots of this cabinet still blocked (awaiting review, or condemned and not yet unloaded), with where they sit."""


@dataclass(frozen=True, slots=True)
class SetCriticalOverride:
    """An administrator turns critical-override mode on or off: while on, items on the formulary's
    critical-override list are removed without an order, each removal going to pharmacist review."""

    enabled: bool
    reason: str = ""


# --- robot fill ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartFill:
    """Fill a vial of ``quantity`` tablets of ``item_id`` for prescription ``rx_number``: the stock bottle is
    scanned, then the counter counts (``canister`` None) or the robot dispenses from ``canister``."""

    item_id: str
    quantity: int
    rx_number: str
    patient_label: str
    canister: int | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class SecondCount:
    """Schedule II: an independent second count of the filled tablets, by the counter (the vial poured back into the
    hopper) or, ``by_camera``, from an image of the tablets spread on the counting tray."""

    timeout_s: float = 30.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class CancelFill:
    pass
