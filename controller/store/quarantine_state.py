"""Quarantined lots: recalls (a lot blocked everywhere) and holds (a lot blocked in one pocket after a refrigerator
excursion), their pharmacist review, and where a lot sits.

Responsible for the rows of ``quarantined_lots``, written in the caller's transaction next to the ledger entry
that goes with each. Not responsible for the review rules (``controller.engine``) or for what is usable (FEFO in
``engine_state.usable_lots`` skips an active hold itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.store.models import PocketLotRow, QuarantinedLotRow

QUARANTINE_ACTIVE = "active"  # a quarantined_lots row that still blocks its lot
QUARANTINE_RELEASED = "released"  # released by a pharmacist after review: the lot is usable again


@dataclass(frozen=True, slots=True)
class LotPlace:
    pocket_id: str
    lot: str
    quantity: int

    def view(self) -> dict[str, object]:
        return {"pocket_id": self.pocket_id, "lot": self.lot, "quantity": self.quantity}


@dataclass(frozen=True, slots=True)
class QuarantineHold:
    id: int
    item_id: str
    lot_number: str
    pocket_id: str | None  # None: a recall, every pocket of the item
    reason: str
    ledger_seq: int
    status: str
    review_decision: str | None


def _hold(row: QuarantinedLotRow) -> QuarantineHold:
    return QuarantineHold(row.id, row.item_id, row.lot_number, row.pocket_id, row.reason, row.ledger_seq, row.status,
                          row.review_decision)  # fmt: skip


def is_quarantined(session: Session, item_id: str, lot_number: str, pocket_id: str | None = None) -> bool:
    """An active recall of the item's lot (anywhere), or an active hold of the lot in ``pocket_id``."""
    held = session.execute(
        select(QuarantinedLotRow.pocket_id).where(
            QuarantinedLotRow.status == QUARANTINE_ACTIVE,
            QuarantinedLotRow.item_id == item_id,
            QuarantinedLotRow.lot_number == lot_number,
        )
    ).scalars()
    return any(p is None or pocket_id is None or p == pocket_id for p in held)


def lot_places(session: Session, pockets: Sequence[str], lot_number: str) -> list[LotPlace]:
    """Where units of ``lot_number`` sit among ``pockets`` (the unload list of a hold)."""
    rows = session.execute(
        select(PocketLotRow)
        .where(PocketLotRow.pocket_id.in_(list(pockets)), PocketLotRow.lot_number == lot_number)
        .where(PocketLotRow.quantity > 0)
        .order_by(PocketLotRow.pocket_id)
    ).scalars()
    return [LotPlace(r.pocket_id, r.lot_number, r.quantity) for r in rows]


def stocked_lots(session: Session, pocket_id: str) -> list[LotPlace]:
    rows = session.execute(
        select(PocketLotRow).where(PocketLotRow.pocket_id == pocket_id, PocketLotRow.quantity > 0)
    ).scalars()
    return [LotPlace(r.pocket_id, r.lot_number, r.quantity) for r in rows]


def add_hold(
    session: Session,
    *,
    cabinet_id: str,
    item_id: str,
    lot_number: str,
    pocket_id: str | None,
    ndc: str | None,
    reason: str,
    quarantined_by: str | None,
    quarantined_at: datetime,
    ledger_seq: int,
) -> int:
    row = QuarantinedLotRow(
        cabinet_id=cabinet_id,
        item_id=item_id,
        lot_number=lot_number,
        pocket_id=pocket_id,
        ndc=ndc,
        reason=reason,
        quarantined_by=quarantined_by,
        quarantined_at=quarantined_at,
        ledger_seq=ledger_seq,
        status=QUARANTINE_ACTIVE,
    )
    session.add(row)
    session.flush()
    return row.id


def get_hold(session: Session, cabinet_id: str, hold_id: int) -> QuarantineHold | None:
    row = session.get(QuarantinedLotRow, hold_id)
    return _hold(row) if row is not None and row.cabinet_id == cabinet_id else None


def active_holds(session: Session, cabinet_id: str) -> list[QuarantineHold]:
    rows = session.execute(
        select(QuarantinedLotRow)
        .where(QuarantinedLotRow.cabinet_id == cabinet_id, QuarantinedLotRow.status == QUARANTINE_ACTIVE)
        .order_by(QuarantinedLotRow.id)
    ).scalars()
    return [_hold(r) for r in rows]


def review_hold(
    session: Session, hold_id: int, *, decision: str, by: str, at: datetime, seq: int, release: bool
) -> None:
    row = session.get(QuarantinedLotRow, hold_id)
    if row is None:
        raise KeyError(hold_id)
    row.review_decision, row.reviewed_by, row.reviewed_at, row.review_seq = decision, by, at, seq
    if release:
        row.status = QUARANTINE_RELEASED
    session.flush()
