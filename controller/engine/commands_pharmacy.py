"""Commands of the pharmacy workflows (restock, counts, quarantine, critical override, robot fill), as typed
records. Each is registered on the engine by its workflow module and returns a ``CommandResult``."""

from __future__ import annotations

from dataclasses import dataclass

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
    """Read the next package from the scanner (over the wire) and check it against the pocket."""

    units: int = 1  # units in the package
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class FinishRestock:
    pass


@dataclass(frozen=True, slots=True)
class CancelRestock:
    pass


# --- counts --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartCount:
    """A blind count. ``pocket_ids`` None: every controlled pocket of the cabinet."""

    kind: CountKind = CountKind.SHIFT_CHANGE
    pocket_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EnterPocketCount:
    pocket_id: str
    count: int


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


@dataclass(frozen=True, slots=True)
class SetCriticalOverride:
    """An administrator turns critical-override mode on or off (every removal then goes to review)."""

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
    """Schedule II: the vial was poured back into the hopper; the counter tallies it again."""

    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CancelFill:
    pass
