"""Where a compartment is on the I/O board: the one mapping from cabinet topology to board addresses.

A drawer's position in the cabinet is its board drawer number; a pocket in a lidded or single-dose drawer has its
own lid lock, addressed by (drawer number, its position). Compartment ids are the drawer id for a drawer and the
pocket id for a lidded pocket. Not responsible for talking to the board.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.topology import DrawerKind


@dataclass(frozen=True, slots=True)
class BoardAddress:
    drawer: int
    pocket: int | None = None  # set for a lid lock

    @property
    def is_lid(self) -> bool:
        return self.pocket is not None


def board_address(drawer_kind: DrawerKind | str, drawer_position: int, pocket_position: int | None) -> BoardAddress:
    """The latch that guards a pocket: its lid in a lidded or single-dose drawer, otherwise its drawer."""
    if drawer_position < 1:
        raise ValueError(f"drawer positions start at 1, not {drawer_position}")
    if pocket_position is not None and DrawerKind(drawer_kind).lidded_pockets:
        if pocket_position < 1:
            raise ValueError(f"pocket positions start at 1, not {pocket_position}")
        return BoardAddress(drawer_position, pocket_position)
    return BoardAddress(drawer_position)
