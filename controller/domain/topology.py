"""Cabinet topology: a cabinet holds drawers of a kind, drawers hold pockets, a pocket holds lots of one item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from controller.errors import VerificationError

STOCK_OUT, BELOW_MIN, BELOW_PAR, OK, ABOVE_MAX = "stock_out", "below_min", "below_par", "ok", "above_max"


class DrawerKind(StrEnum):
    MATRIX = "matrix"  # open bins; a guiding light shows the right one
    LIDDED = "lidded"  # each pocket has its own locked lid
    SINGLE_DOSE = "single_dose"  # one dose at a time (CUBIE-style)
    REFRIGERATOR = "refrigerator"  # locked, monitored 2-8 °C
    VAULT = "vault"  # controlled-substance vault
    RETURN_BIN = "return_bin"  # one-way; pharmacy empties and counts it

    @property
    def lidded_pockets(self) -> bool:
        return self in (DrawerKind.LIDDED, DrawerKind.SINGLE_DOSE)

    @property
    def holds_assigned_items(self) -> bool:
        """A return bin takes anything; every other kind keeps one item per pocket."""
        return self is not DrawerKind.RETURN_BIN


@dataclass(frozen=True, slots=True)
class StockLevels:
    """Restock levels in dispensing units: refill to ``par`` when at or below ``min``; never above ``max``."""

    par: int
    min: int
    max: int

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.par <= self.max:
            raise VerificationError(
                "inventory.bad_levels",
                f"levels must satisfy 0 <= min <= par <= max; got min={self.min} par={self.par} max={self.max}",
                min=self.min,
                par=self.par,
                max=self.max,
            )

    def needs_restock(self, on_hand: int) -> bool:
        # "and below par": with min == par a pocket at par must not show on the restock list with 0 to load.
        return on_hand <= self.min and on_hand < self.par

    def refill_quantity(self, on_hand: int) -> int:
        return max(0, self.par - on_hand)

    def status(self, usable: int, on_hand: int) -> str:
        """Where usable stock stands against the levels (on hand counts expired and held units too)."""
        if usable <= 0:
            return STOCK_OUT
        if usable < self.min:
            return BELOW_MIN
        if usable < self.par:
            return BELOW_PAR
        if on_hand > self.max > 0:
            return ABOVE_MAX
        return OK

    def to_par(self, usable: int, on_hand: int) -> int:
        """Units that bring usable stock back to par, never above max (the pick list's rule)."""
        return max(0, min(self.par - usable, self.max - on_hand))


@dataclass(frozen=True, slots=True)
class Lot:
    lot_number: str
    expiry: date
    quantity: int

    def is_expired(self, today: date) -> bool:
        """A package is usable through its expiry date and expired the day after."""
        return today > self.expiry


def fefo(lots: list[Lot] | tuple[Lot, ...]) -> list[Lot]:
    """First-expiring, first-out: the order removals take lots in (ties broken by lot number)."""
    return sorted(lots, key=lambda lot: (lot.expiry, lot.lot_number))


@dataclass(frozen=True, slots=True)
class Pocket:
    id: str
    drawer_id: str
    position: int
    levels: StockLevels
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class Drawer:
    id: str
    kind: DrawerKind
    position: int
    label: str


@dataclass(frozen=True, slots=True)
class Cabinet:
    id: str
    name: str
    care_area_id: str
