"""Stock on hand by pocket and lot. The only writer of ``pocket_lots``: every change is sealed into the ledger
in the same transaction, and a change that would make a quantity negative is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.domain.topology import DrawerKind
from controller.domain.transactions import LedgerRecord
from controller.errors import SafetyError, SoftwareError, VerificationError
from controller.store.ledger import Ledger, SealedEntry
from controller.store.models import DrawerRow, PocketLotRow, PocketRow


@dataclass(frozen=True, slots=True)
class StockChange:
    """Add (positive) or take (negative) units of one lot in one pocket. ``expiry`` is needed when the lot is
    new to the pocket."""

    pocket_id: str
    lot_number: str
    quantity_change: int
    expiry: date | None = None


class InventoryStore:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def apply(self, session: Session, change: StockChange, record: LedgerRecord) -> SealedEntry:
        """Change the stock and append its ledger entry, in the caller's transaction."""
        if not record.event_type.moves_stock:
            raise SoftwareError("ledger.invalid_entry", f"{record.event_type.value} does not move stock")
        if change.quantity_change == 0:
            raise SoftwareError("ledger.invalid_entry", "a stock change of zero units records nothing")
        pocket = session.execute(
            select(PocketRow)
            .join(DrawerRow)
            .where(PocketRow.id == change.pocket_id, DrawerRow.cabinet_id == self.ledger.cabinet_id)
        ).scalar_one_or_none()
        if pocket is None:
            raise VerificationError(
                "inventory.unknown_pocket",
                f"pocket {change.pocket_id} is not in cabinet {self.ledger.cabinet_id}",
                pocket=change.pocket_id,
            )
        self._check_item(pocket, record)
        lot = session.execute(
            select(PocketLotRow)
            .where(PocketLotRow.pocket_id == pocket.id, PocketLotRow.lot_number == change.lot_number)
            .with_for_update()
        ).scalar_one_or_none()
        on_hand = lot.quantity if lot is not None else 0
        new_quantity = on_hand + change.quantity_change
        if new_quantity < 0:
            raise SafetyError(
                "inventory.negative_quantity",
                f"pocket {pocket.id} lot {change.lot_number} holds {on_hand}; cannot take {-change.quantity_change}",
                pocket=pocket.id,
                lot=change.lot_number,
                on_hand=on_hand,
                change=change.quantity_change,
            )
        if lot is None:
            if change.expiry is None:
                raise VerificationError(
                    "inventory.unknown_item",
                    f"lot {change.lot_number} is new to pocket {pocket.id}: its expiry date is needed",
                    pocket=pocket.id,
                )
            lot = PocketLotRow(
                pocket_id=pocket.id, lot_number=change.lot_number, expiry=change.expiry, quantity=new_quantity
            )
            session.add(lot)
        else:
            lot.quantity = new_quantity
        session.flush()
        sealed_record = replace(
            record,
            pocket_id=pocket.id,
            item_id=record.item_id or pocket.item_id,
            lot_number=change.lot_number,
            quantity_change=change.quantity_change,
            details={
                **record.details,
                "lot_expiry": lot.expiry.isoformat(),
                "lot_quantity_after": new_quantity,
            },
        )
        return self.ledger.append(session, sealed_record)

    @staticmethod
    def _check_item(pocket: PocketRow, record: LedgerRecord) -> None:
        if pocket.drawer.kind == DrawerKind.RETURN_BIN.value:
            return
        if pocket.item_id is None:
            raise SafetyError("inventory.item_mismatch", f"pocket {pocket.id} has no item assigned", pocket=pocket.id)
        if record.item_id is not None and record.item_id != pocket.item_id:
            raise SafetyError(
                "inventory.item_mismatch",
                f"pocket {pocket.id} holds {pocket.item_id}, not {record.item_id}",
                pocket=pocket.id,
                item=record.item_id,
            )


@dataclass(frozen=True, slots=True)
class LotView:
    lot_number: str
    expiry: date
    quantity: int


@dataclass(frozen=True, slots=True)
class PocketView:
    pocket_id: str
    drawer_id: str
    drawer_kind: str
    drawer_label: str
    position: int
    item_id: str | None
    item_name: str | None
    dea_schedule: str
    par: int
    min: int
    max: int
    lots: tuple[LotView, ...]

    @property
    def quantity(self) -> int:
        return sum(lot.quantity for lot in self.lots)

    @property
    def next_expiry(self) -> date | None:
        dates = [lot.expiry for lot in self.lots if lot.quantity > 0]
        return min(dates) if dates else None


def list_pockets(session: Session, cabinet_id: str) -> list[PocketView]:
    rows = session.execute(
        select(PocketRow)
        .join(DrawerRow)
        .where(DrawerRow.cabinet_id == cabinet_id)
        .options(selectinload(PocketRow.lots), selectinload(PocketRow.item), selectinload(PocketRow.drawer))
        .order_by(DrawerRow.position, PocketRow.position)
    ).scalars()
    return [
        PocketView(
            pocket_id=p.id,
            drawer_id=p.drawer_id,
            drawer_kind=p.drawer.kind,
            drawer_label=p.drawer.label,
            position=p.position,
            item_id=p.item_id,
            item_name=p.item.display_name if p.item else None,
            dea_schedule=p.item.dea_schedule if p.item else "",
            par=p.par_level,
            min=p.min_level,
            max=p.max_level,
            lots=tuple(
                LotView(lot.lot_number, lot.expiry, lot.quantity)
                for lot in sorted(p.lots, key=lambda lot: (lot.expiry, lot.lot_number))
                if lot.quantity > 0
            ),
        )
        for p in rows
    ]
