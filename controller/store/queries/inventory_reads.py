"""What the stock and device screens read about a cabinet besides its pockets (``controller.store.inventory.
list_pockets`` answers those): the lots an active quarantine blocks, the items the cabinet stocks, and its
refrigerated drawers.

Answers from the committed store, so a screen sees what the engine loaded and anything changed since. Not: whether
a lot may be removed (the engine, FEFO in ``engine_state.usable_lots``), or any change to stock or holds
(``InventoryStore`` and the engine's quarantine workflow).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.topology import DrawerKind
from controller.store.models import DrawerRow, PocketRow, QuarantinedLotRow
from controller.store.quarantine_state import QUARANTINE_ACTIVE


@dataclass(frozen=True, slots=True)
class LotHold:
    """A lot an active quarantine blocks: in one pocket, or everywhere (``pocket_id`` None: a recall)."""

    pocket_id: str | None
    item_id: str
    lot_number: str


def active_holds(session: Session, cabinet_id: str) -> frozenset[LotHold]:
    rows = session.execute(
        select(QuarantinedLotRow.pocket_id, QuarantinedLotRow.item_id, QuarantinedLotRow.lot_number).where(
            QuarantinedLotRow.cabinet_id == cabinet_id, QuarantinedLotRow.status == QUARANTINE_ACTIVE
        )
    ).all()
    return frozenset(LotHold(r.pocket_id, r.item_id, r.lot_number) for r in rows)


def stocked_items(session: Session, cabinet_id: str) -> frozenset[str]:
    """The items assigned to at least one pocket of the cabinet (stock on hand or not)."""
    rows = session.execute(
        select(PocketRow.item_id)
        .join(DrawerRow, PocketRow.drawer_id == DrawerRow.id)
        .where(DrawerRow.cabinet_id == cabinet_id, PocketRow.item_id.is_not(None))
        .distinct()
    ).scalars()
    return frozenset(item for item in rows if item is not None)


def refrigerator_drawers(session: Session, cabinet_id: str) -> list[str]:
    """The ids of the cabinet's refrigerated drawers that hold pockets, sorted."""
    rows = session.execute(
        select(DrawerRow.id)
        .join(PocketRow, PocketRow.drawer_id == DrawerRow.id)
        .where(DrawerRow.cabinet_id == cabinet_id, DrawerRow.kind == DrawerKind.REFRIGERATOR.value)
        .distinct()
    ).scalars()
    return sorted(rows)
