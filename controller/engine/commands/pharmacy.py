"""Commands of the pharmacy workflows (restock, counts, quarantine, robot fill), each naming the workflow it is for;
and their payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.domain.quarantine import QuarantineDecision
from controller.engine.commands.base import Answers, Returns
from controller.engine.results import Payload
from controller.fsm.workflows.count import CountKind
from controller.fsm.workflows.restock import RestockKind

View = Mapping[str, Any]


# --- payloads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PickList(Payload):
    lines: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class RestockStep(Payload):
    restock: View
    state: str
    ledger_seqs: tuple[int, ...] = ()
    unlocked: tuple[str, ...] = ()
    scan: View | None = None
    next: str | None = None

    @property
    def restock_id(self) -> str:
        return str(self.restock["restock_id"])


@dataclass(frozen=True, slots=True)
class CountStep(Payload):
    count: View
    state: str
    ledger_seqs: tuple[int, ...] = ()
    next: str | None = None
    unlocked: tuple[str, ...] = ()
    next_unlock: View | None = None  # the next pocket did not unlock (the count itself was recorded)

    @property
    def count_id(self) -> str:
        return str(self.count["count_id"])


@dataclass(frozen=True, slots=True)
class RecallPlaced(Payload):
    quarantine_id: int
    item_id: str
    lot: str
    unload: tuple[View, ...]
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QuarantineReviewed(Payload):
    quarantine_id: int
    decision: str
    item_id: str
    lot: str
    unload: tuple[View, ...]
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QuarantineList(Payload):
    quarantines: tuple[View, ...]


@dataclass(frozen=True, slots=True)
class FillStep(Payload):
    fill_id: str
    state: str
    ledger_seqs: tuple[int, ...] = ()
    next: str | None = None
    second_counter: str | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class FridgeCheck(Payload):
    temperature_c: float
    excursion: bool
    minutes: float = 0.0
    quarantined: tuple[View, ...] = ()


# --- restock / load / unload ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowPickList(Answers[PickList]):
    """Pockets at or below their minimum, with the quantity that brings each back to par (never above max)."""


@dataclass(frozen=True, slots=True)
class StartRestock(Returns[RestockStep]):
    """Work one pocket: the pocket is unlocked, then a blind count-back. ``quantity`` defaults to the pick
    list's suggestion; ``source`` is the chain-of-custody origin ("vault:CII-1") of controlled stock."""

    pocket_id: str
    kind: RestockKind = RestockKind.RESTOCK
    quantity: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class CountBack(Returns[RestockStep]):
    restock_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ScanPackage(Returns[RestockStep]):
    """Read the next package from the scanner (over the wire), or from a camera frame (``by_camera``), and check
    it against the pocket."""

    restock_id: str
    units: int = 1  # units in the package
    timeout_s: float = 5.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class FinishRestock(Returns[RestockStep]):
    restock_id: str


@dataclass(frozen=True, slots=True)
class CancelRestock(Returns[RestockStep]):
    restock_id: str


@dataclass(frozen=True, slots=True)
class SignRestockWitness(Returns[RestockStep]):
    """A second person signs, at the cabinet, for the controlled restock waiting in awaiting_witness (PIN and/or
    badge): the witness step is opened if it is not, and signed."""

    restock_id: str
    user_id: str
    pin: str | None = None
    badge: str | None = None


# --- counts ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartCount(Returns[CountStep]):
    """A blind count. ``pocket_ids`` None: every controlled pocket of the cabinet. The first pocket is unlocked;
    each of the others is unlocked once the one before it is counted."""

    kind: CountKind = CountKind.SHIFT_CHANGE
    pocket_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EnterPocketCount(Returns[CountStep]):
    """What the person sees in the open pocket (blind: the expected number is never shown)."""

    count_id: str
    pocket_id: str
    count: int


@dataclass(frozen=True, slots=True)
class UnlockCountPocket(Returns[CountStep]):
    """Unlock the count's next pocket again (its unlock failed, or the hold ran out before it was opened)."""

    count_id: str


@dataclass(frozen=True, slots=True)
class StopCount(Returns[CountStep]):
    count_id: str


# --- quarantine -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecallLot(Returns[RecallPlaced]):
    """A manufacturer or FDA recall: block ``lot_number`` of the item carrying ``ndc`` everywhere."""

    ndc: str  # printed ("0409-1891-01") or bare 10 digits
    lot_number: str
    reason: str = "recall"


@dataclass(frozen=True, slots=True)
class ReviewQuarantine(Returns[QuarantineReviewed]):
    """A pharmacist reviews one quarantined lot: release it, or destroy it. ``reason`` is a
    ``QuarantineReviewReason`` value."""

    quarantine_id: int
    decision: QuarantineDecision
    reason: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuarantines(Answers[QuarantineList]):
    """Lots of this cabinet still blocked (awaiting review, or condemned and not yet unloaded), with where they sit."""


@dataclass(frozen=True, slots=True)
class CheckRefrigerator(Returns[FridgeCheck]):
    """Judge the refrigerator's temperature (the running loop passes each fresh reading; None reads the board)."""

    temperature_c: float | None = None


# --- robot fill -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartFill(Returns[FillStep]):
    """Fill a vial of ``quantity`` tablets of ``item_id`` for prescription ``rx_number``: the stock bottle is
    scanned, then the counter counts (``canister`` None) or the robot dispenses from ``canister``."""

    item_id: str
    quantity: int
    rx_number: str
    patient_label: str
    canister: int | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class SecondCount(Returns[FillStep]):
    """Schedule II: an independent second count of the filled tablets, by the counter (the vial poured back into the
    hopper) or, ``by_camera``, from an image of the tablets spread on the counting tray."""

    fill_id: str
    timeout_s: float = 30.0
    by_camera: bool = False


@dataclass(frozen=True, slots=True)
class CancelFill(Returns[FillStep]):
    fill_id: str
