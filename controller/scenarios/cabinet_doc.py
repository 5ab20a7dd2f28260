"""The cabinet a scenario runs on: the seed document (``controller/store/seed.py``) and where each part of it sits
on the I/O board.

Responsible for: resolving the ``cabinet:`` section (``demo``, a document of its own, or one that ``extends: demo``:
lists merge by id, a later entry replacing the demo's entry with the same id, other fields replace the demo's);
the index of what the cabinet holds (users and their PINs, patients, orders, drawers, pockets, items), used for
the load-time reference checks and to turn ``D2`` / ``D2-P01`` into board drawer and lid numbers the same way the
engine does (``controller.engine.addressing``); and the board fitting (drawer count, pockets, lid locks) the I/O
board simulator is built with. Not responsible for seeding the store (``seed_cabinet`` does, at run time).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.domain.topology import DrawerKind
from controller.engine.topology import BoardAddress, board_address
from controller.store.formulary_file import FormularyEntry
from controller.store.seed import demo_layout
from firmware_protocols.io_board.register_map import CabinetLayout

# The seed document's lists, each with the field that identifies an entry.
LIST_KEYS: Mapping[str, str] = {"user": "id", "drawer": "id", "patient": "mrn", "order": "id"}


def resolve_cabinet(raw: Any) -> dict[str, Any]:
    """The seed document a ``cabinet:`` section stands for (None: the demo cabinet)."""
    if raw is None or raw == "demo":
        return demo_layout()
    doc = copy.deepcopy(dict(raw))
    if doc.pop("extends", None) != "demo":
        return doc
    merged = demo_layout()
    for key, value in doc.items():
        if key in LIST_KEYS:
            merged[key] = _merge_by_id(merged.get(key, []), value, LIST_KEYS[key])
        else:
            merged[key] = value
    return merged


def _merge_by_id(base: list[dict[str, Any]], extra: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    replaced = {entry[key]: entry for entry in extra}
    merged = [replaced.pop(entry[key], entry) for entry in base]
    return merged + [entry for entry in extra if entry[key] in replaced]


@dataclass(frozen=True, slots=True)
class PocketPlace:
    pocket_id: str
    drawer_id: str
    drawer_kind: DrawerKind
    item_id: str | None
    address: BoardAddress  # the latch that guards it: its lid, or its drawer
    position: int  # within the drawer, 1-based

    @property
    def has_lid(self) -> bool:
        return self.address.is_lid


@dataclass
class CabinetIndex:
    """What a cabinet document holds, by id."""

    users: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    patients: set[str] = field(default_factory=set)
    orders: dict[str, str] = field(default_factory=dict)  # order id -> item id
    drawers: dict[str, tuple[int, DrawerKind]] = field(default_factory=dict)  # id -> (board drawer, kind)
    pockets: dict[str, PocketPlace] = field(default_factory=dict)
    formulary: dict[str, FormularyEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: Mapping[str, Any], formulary: list[FormularyEntry]) -> CabinetIndex:
        index = cls(formulary={entry.medication.id: entry for entry in formulary})
        index.users = {str(u["id"]): u for u in doc.get("user", [])}
        index.patients = {str(p["mrn"]) for p in doc.get("patient", [])}
        index.orders = {str(o["id"]): str(o["item"]) for o in doc.get("order", [])}
        for d_pos, drawer in enumerate(doc.get("drawer", []), start=1):
            kind = DrawerKind(drawer["kind"])
            index.drawers[str(drawer["id"])] = (d_pos, kind)
            for p_pos, pocket in enumerate(drawer.get("pocket", []), start=1):
                index.pockets[str(pocket["id"])] = PocketPlace(
                    pocket_id=str(pocket["id"]),
                    drawer_id=str(drawer["id"]),
                    drawer_kind=kind,
                    item_id=pocket.get("item"),
                    address=board_address(kind, d_pos, p_pos),
                    position=p_pos,
                )
        return index

    @property
    def compartments(self) -> list[str]:
        """Drawers and lidded pockets: what the engine locks and unlocks."""
        return [*self.drawers, *(p for p, place in self.pockets.items() if place.has_lid)]

    @property
    def items(self) -> set[str]:
        return set(self.formulary)

    def ndc_of(self, item_id: str) -> str:
        return str(self.formulary[item_id].medication.ndc)


def board_layout(doc: Mapping[str, Any]) -> CabinetLayout:
    """The I/O board this cabinet needs: one board drawer per drawer, a lid lock per lidded or single-dose pocket."""
    drawers = list(doc.get("drawer", []))
    widest = max([len(d.get("pocket", [])) for d in drawers] + [1])
    lidded = {
        (d_pos, p_pos)
        for d_pos, drawer in enumerate(drawers, start=1)
        if DrawerKind(drawer["kind"]).lidded_pockets
        for p_pos in range(1, len(drawer.get("pocket", [])) + 1)
    }
    return CabinetLayout(drawer_count=max(len(drawers), 1), pockets_per_drawer=widest, lidded=frozenset(lidded))
