"""Where everything of one cabinet is: its compartments and their addresses on the I/O board, and which
compartments guard each pocket (its unlock chain, outermost first).

Responsible for: the one mapping from cabinet topology to board addresses. A drawer's position in the cabinet is
its board drawer number; a pocket in a lidded or single-dose drawer has its own lid lock, addressed by (drawer
number, its position). Compartment ids are the drawer id for a drawer and the pocket id for a lidded pocket.
Not responsible for talking to the board or for any state (``controller.fsm.compartment``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from controller.domain.topology import DrawerKind
from controller.store.cabinet_store import CabinetReader, PocketSlot


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


@dataclass(frozen=True)
class CabinetTopology:
    cabinet_id: str
    profiled: bool
    slots: dict[str, PocketSlot]  # pocket id -> where it is and what it holds
    address: dict[str, BoardAddress]  # compartment id -> its latch
    unlock_chain: dict[str, tuple[str, ...]]  # pocket id -> compartments to unlock, outermost first
    pocket_compartments: dict[str, str | None] = field(default_factory=dict)  # compartment -> its pocket (lids)

    @classmethod
    def read(cls, reader: CabinetReader) -> CabinetTopology:
        address: dict[str, BoardAddress] = {}
        chain: dict[str, tuple[str, ...]] = {}
        pockets: dict[str, str | None] = {}
        for drawer_id, kind, position in reader.drawers():
            address[drawer_id] = board_address(DrawerKind(kind), position, None)
            pockets[drawer_id] = None
        slots = reader.slots()
        for slot in slots:
            lid = board_address(DrawerKind(slot.drawer_kind), slot.drawer_position, slot.position)
            if lid.is_lid:
                address[slot.pocket_id] = lid
                pockets[slot.pocket_id] = slot.pocket_id
                chain[slot.pocket_id] = (slot.drawer_id, slot.pocket_id)
            else:
                chain[slot.pocket_id] = (slot.drawer_id,)
        return cls(reader.cabinet_id, reader.is_profiled(), {s.pocket_id: s for s in slots}, address, chain, pockets)

    @property
    def compartment_ids(self) -> Iterator[str]:
        return iter(self.address)

    def innermost(self, pocket_id: str) -> str:
        return self.unlock_chain[pocket_id][-1]

    def pockets_behind(self, compartment_id: str) -> list[str]:
        """The stocked pockets a compartment is the innermost latch of (a lid: its pocket; a drawer: its open
        pockets)."""
        return [p for p, chain in self.unlock_chain.items() if chain[-1] == compartment_id and self.slots[p].item_id]

    def pockets_of_kind(self, kind: DrawerKind) -> list[str]:
        return [s.pocket_id for s in self.slots.values() if s.drawer_kind == kind.value]
