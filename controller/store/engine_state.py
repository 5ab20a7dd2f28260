"""What the engine reads and writes besides stock and the ledger: the cabinet's addressable topology, orders and
medications by id, FEFO lots, and the working state that must survive a restart (login lockouts, open
discrepancies, pending wastes, the override review queue).

Every function works in the caller's session: writers are called inside the ``Database.write()`` transaction
that also appends the ledger entry the change belongs to, so the two commit or roll back together. Not
responsible for rules (the state machines) or for deciding what to write (the engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from controller.domain.medication import Medication
from controller.domain.patients import Order, OrderStatus
from controller.store.models import (
    CabinetRow,
    CareAreaRow,
    DiscrepancyRow,
    DrawerRow,
    EncounterRow,
    MedicationRow,
    OrderRow,
    OverrideReviewRow,
    PatientRow,
    PendingWasteRow,
    PocketLotRow,
    PocketRow,
    QuarantinedLotRow,
    UserLockoutRow,
    UserRow,
)
from controller.store.quarantine_state import QUARANTINE_ACTIVE, QUARANTINE_RELEASED  # noqa: F401 (re-exported)
from controller.store.repositories import medication_from_row

OPEN = "open"


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# --- topology, orders, lots ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PocketSlot:
    pocket_id: str
    drawer_id: str
    drawer_kind: str
    drawer_position: int
    position: int
    item_id: str | None


def cabinet_slots(session: Session, cabinet_id: str) -> list[PocketSlot]:
    rows = session.execute(
        select(PocketRow, DrawerRow)
        .join(DrawerRow, PocketRow.drawer_id == DrawerRow.id)
        .where(DrawerRow.cabinet_id == cabinet_id)
        .order_by(DrawerRow.position, PocketRow.position)
    ).all()
    return [PocketSlot(p.id, d.id, d.kind, d.position, p.position, p.item_id) for p, d in rows]


def cabinet_drawers(session: Session, cabinet_id: str) -> list[tuple[str, str, int]]:
    """(drawer id, kind, position) of every drawer, by position."""
    rows = session.execute(
        select(DrawerRow.id, DrawerRow.kind, DrawerRow.position)
        .where(DrawerRow.cabinet_id == cabinet_id)
        .order_by(DrawerRow.position)
    ).all()
    return [(r.id, r.kind, r.position) for r in rows]


def cabinet_is_profiled(session: Session, cabinet_id: str) -> bool:
    row = session.execute(
        select(CareAreaRow.profiled)
        .join(CabinetRow, CabinetRow.care_area_id == CareAreaRow.id)
        .where(CabinetRow.id == cabinet_id)
    ).scalar_one_or_none()
    return bool(row) if row is not None else True  # unknown: the stricter rule


def patient_exists(session: Session, patient_id: str) -> bool:
    return session.get(PatientRow, patient_id) is not None


def patient_is_admitted(session: Session, patient_id: str) -> bool:
    """The patient has an active encounter (an admission not discharged or cancelled)."""
    query = select(EncounterRow.id).where(EncounterRow.patient_id == patient_id, EncounterRow.active.is_(True))
    return session.execute(query.limit(1)).first() is not None


def patient_allergies(session: Session, patient_id: str) -> tuple[str, ...]:
    row = session.get(PatientRow, patient_id)
    if row is None or not row.allergies:
        return ()
    return tuple(line for line in row.allergies.splitlines() if line.strip())


def get_order(session: Session, order_id: str) -> Order | None:
    row = session.get(OrderRow, order_id)
    if row is None:
        return None
    return Order(
        id=row.id,
        patient_id=row.patient_id,
        item_id=row.item_id,
        dose_amount=row.dose_amount,
        dose_unit=row.dose_unit,
        route=row.route,
        frequency=row.frequency,
        status=OrderStatus(row.status),
        pharmacist_verified=row.pharmacist_verified,
        prn=row.prn,
    )


def get_medication(session: Session, item_id: str) -> Medication | None:
    row = session.get(MedicationRow, item_id)
    return medication_from_row(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class LotStock:
    lot_number: str
    expiry: date
    quantity: int


def usable_lots(session: Session, pocket_id: str, today: date) -> list[LotStock]:
    """Lots with stock that are not expired (usable through their expiry date) and not quarantined (a recall of
    the pocket's item and lot, or a hold on this pocket's lot), first-expiring first (FEFO)."""
    pocket = session.get(PocketRow, pocket_id)
    item_id = pocket.item_id if pocket is not None else None
    quarantined = select(QuarantinedLotRow.lot_number).where(
        QuarantinedLotRow.status == QUARANTINE_ACTIVE,
        QuarantinedLotRow.item_id == item_id,
        or_(QuarantinedLotRow.pocket_id.is_(None), QuarantinedLotRow.pocket_id == pocket_id),
    )
    rows = session.execute(
        select(PocketLotRow)
        .where(PocketLotRow.pocket_id == pocket_id, PocketLotRow.quantity > 0, PocketLotRow.expiry >= today)
        .where(PocketLotRow.lot_number.not_in(quarantined))
        .order_by(PocketLotRow.expiry, PocketLotRow.lot_number)
    ).scalars()
    return [LotStock(r.lot_number, r.expiry, r.quantity) for r in rows]


def pocket_on_hand(session: Session, pocket_id: str) -> int:
    """Every unit physically in the pocket, expired lots included: what a blind count should find."""
    rows = session.execute(select(PocketLotRow.quantity).where(PocketLotRow.pocket_id == pocket_id)).scalars()
    return sum(rows)


def fefo_split(lots: list[LotStock], quantity: int) -> list[tuple[LotStock, int]] | None:
    """Take ``quantity`` units from ``lots`` (already FEFO-ordered); None if they do not hold enough."""
    plan: list[tuple[LotStock, int]] = []
    left = quantity
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.quantity, left)
        plan.append((lot, take))
        left -= take
    return plan if left <= 0 else None


def user_secrets(session: Session, user_id: str) -> tuple[str, str | None] | None:
    """(PIN hash, badge hash) of a user, or None for an unknown id."""
    row = session.get(UserRow, user_id)
    return (row.pin_hash, row.badge_hash) if row is not None else None


# --- lockouts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockoutState:
    failures: int
    locked_at: datetime | None
    until: datetime | None


def load_lockouts(session: Session) -> dict[str, LockoutState]:
    return {
        r.user_id: LockoutState(r.failures, _aware(r.locked_at), _aware(r.locked_until))
        for r in session.execute(select(UserLockoutRow)).scalars()
    }


def save_lockout(session: Session, user_id: str, state: LockoutState | None) -> None:
    """Make the stored lockout of ``user_id`` equal ``state`` (None or zero failures: no row)."""
    row = session.get(UserLockoutRow, user_id)
    if state is None or (state.failures == 0 and state.locked_at is None):
        if row is not None:
            session.delete(row)
        return
    if session.get(UserRow, user_id) is None:
        return  # an unknown id has nothing to lock; its failed attempts are in the ledger
    if row is None:
        row = UserLockoutRow(user_id=user_id)
        session.add(row)
    row.failures, row.locked_at, row.locked_until = state.failures, state.locked_at, state.until
    session.flush()


# --- discrepancies ------------------------------------------------------------------------------------------------


COUNT_MISMATCH = "count_mismatch"  # a count that differs from what the store says
UNDOCUMENTED_ACCESS = "undocumented_access"  # a pocket was unlocked or opened and its access never closed out
LIVE_DISCREPANCY = ("open", "escalated", "resolved")


@dataclass(frozen=True, slots=True)
class Discrepancy:
    id: int
    pocket_id: str
    item_id: str | None
    expected: int
    counted: int | None
    raised_by: str
    raised_at: datetime
    deadline: datetime
    status: str
    ledger_seq: int
    controlled: bool
    kind: str = COUNT_MISMATCH
    workflow_id: str | None = None
    resolved_by: str | None = None


def _discrepancy(row: DiscrepancyRow) -> Discrepancy:
    raised_at, deadline = _aware(row.raised_at), _aware(row.deadline)
    assert raised_at is not None and deadline is not None
    return Discrepancy(
        row.id,
        row.pocket_id,
        row.item_id,
        row.expected,
        row.counted,
        row.raised_by,
        raised_at,
        deadline,
        row.status,
        row.ledger_seq,
        row.controlled,
        row.kind,
        row.workflow_id,
        row.resolved_by,
    )


def add_discrepancy(
    session: Session,
    *,
    cabinet_id: str,
    pocket_id: str,
    item_id: str | None,
    expected: int,
    counted: int | None,
    raised_by: str,
    raised_at: datetime,
    deadline: datetime,
    ledger_seq: int,
    controlled: bool,
    kind: str = COUNT_MISMATCH,
    workflow_id: str | None = None,
) -> int:
    row = DiscrepancyRow(
        cabinet_id=cabinet_id,
        pocket_id=pocket_id,
        item_id=item_id,
        expected=expected,
        counted=counted,
        raised_by=raised_by,
        raised_at=raised_at,
        deadline=deadline,
        status=OPEN,
        ledger_seq=ledger_seq,
        controlled=controlled,
        kind=kind,
        workflow_id=workflow_id,
    )
    session.add(row)
    session.flush()
    return row.id


def open_discrepancies(
    session: Session, cabinet_id: str, *, pocket_id: str | None = None, raised_by: str | None = None
) -> list[Discrepancy]:
    query = select(DiscrepancyRow).where(DiscrepancyRow.cabinet_id == cabinet_id, DiscrepancyRow.status == OPEN)
    if pocket_id is not None:
        query = query.where(DiscrepancyRow.pocket_id == pocket_id)
    if raised_by is not None:
        query = query.where(DiscrepancyRow.raised_by == raised_by)
    return [_discrepancy(r) for r in session.execute(query.order_by(DiscrepancyRow.id)).scalars()]


def live_discrepancies(session: Session, cabinet_id: str) -> list[Discrepancy]:
    """Every discrepancy not yet reviewed (open, escalated, resolved), oldest first."""
    query = select(DiscrepancyRow).where(
        DiscrepancyRow.cabinet_id == cabinet_id, DiscrepancyRow.status.in_(LIVE_DISCREPANCY)
    )
    return [_discrepancy(r) for r in session.execute(query.order_by(DiscrepancyRow.id)).scalars()]


def get_discrepancy(session: Session, cabinet_id: str, discrepancy_id: int) -> Discrepancy | None:
    row = session.get(DiscrepancyRow, discrepancy_id)
    return _discrepancy(row) if row is not None and row.cabinet_id == cabinet_id else None


def set_discrepancy_status(
    session: Session, discrepancy_id: int, *, status: str, by: str | None = None, at: datetime | None = None
) -> None:
    row = session.get(DiscrepancyRow, discrepancy_id)
    if row is None:
        raise KeyError(discrepancy_id)
    row.status = status
    if by is not None:
        row.resolved_by, row.resolved_at = by, at
    session.flush()


def close_discrepancy(session: Session, discrepancy_id: int, *, status: str, by: str, at: datetime) -> None:
    set_discrepancy_status(session, discrepancy_id, status=status, by=by, at=at)


# --- pending wastes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingWaste:
    id: int
    user_id: str
    patient_id: str | None
    order_id: str | None
    item_id: str
    pocket_id: str
    lot_number: str | None
    amount: str
    unit: str
    removed_seq: int
    due_at: datetime
    status: str


def add_pending_waste(
    session: Session,
    *,
    cabinet_id: str,
    user_id: str,
    patient_id: str | None,
    order_id: str | None,
    item_id: str,
    pocket_id: str,
    lot_number: str | None,
    amount: str,
    unit: str,
    removed_seq: int,
    due_at: datetime,
    status: str = OPEN,
) -> int:
    row = PendingWasteRow(
        cabinet_id=cabinet_id,
        user_id=user_id,
        patient_id=patient_id,
        order_id=order_id,
        item_id=item_id,
        pocket_id=pocket_id,
        lot_number=lot_number,
        amount=amount,
        unit=unit,
        removed_seq=removed_seq,
        due_at=due_at,
        status=status,
    )
    session.add(row)
    session.flush()
    return row.id


def pending_wastes(session: Session, cabinet_id: str, user_id: str | None = None) -> list[PendingWaste]:
    query = select(PendingWasteRow).where(PendingWasteRow.cabinet_id == cabinet_id, PendingWasteRow.status == OPEN)
    if user_id is not None:
        query = query.where(PendingWasteRow.user_id == user_id)
    return [_pending_waste(r) for r in session.execute(query.order_by(PendingWasteRow.id)).scalars()]


AWAITING_WITNESS = "awaiting_witness"  # entered, its witness not signed yet: pending again after a restart
OWED = (OPEN, "escalated", AWAITING_WITNESS)


def owed_wastes(session: Session, cabinet_id: str) -> list[PendingWaste]:
    """Every waste still owed at the cabinet (open, escalated, or waiting for its witness), oldest first."""
    query = select(PendingWasteRow).where(PendingWasteRow.cabinet_id == cabinet_id, PendingWasteRow.status.in_(OWED))
    return [_pending_waste(r) for r in session.execute(query.order_by(PendingWasteRow.id)).scalars()]


def _pending_waste(r: PendingWasteRow) -> PendingWaste:
    due = _aware(r.due_at)
    assert due is not None
    return PendingWaste(r.id, r.user_id, r.patient_id, r.order_id, r.item_id, r.pocket_id, r.lot_number, r.amount,
                        r.unit, r.removed_seq, due, r.status)  # fmt: skip


def close_pending_waste(session: Session, waste_id: int, status: str = "wasted") -> None:
    row = session.get(PendingWasteRow, waste_id)
    if row is None:
        raise KeyError(waste_id)
    row.status = status
    session.flush()


# --- override review queue ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverrideReview:
    id: int
    ledger_seq: int
    user_id: str
    patient_id: str | None
    item_id: str | None
    reason_code: str | None
    queued_at: datetime
    status: str
    reviewer_id: str | None


def queue_override_review(
    session: Session,
    *,
    cabinet_id: str,
    ledger_seq: int,
    user_id: str,
    patient_id: str | None,
    item_id: str | None,
    reason_code: str | None,
    queued_at: datetime,
) -> int:
    row = OverrideReviewRow(
        cabinet_id=cabinet_id,
        ledger_seq=ledger_seq,
        user_id=user_id,
        patient_id=patient_id,
        item_id=item_id,
        reason_code=reason_code,
        queued_at=queued_at,
        status=OPEN,
    )
    session.add(row)
    session.flush()
    return row.id


def close_override_review(
    session: Session, review_id: int, *, reviewer_id: str, reviewed_at: datetime, outcome: str
) -> None:
    row = session.get(OverrideReviewRow, review_id)
    assert row is not None and row.status == OPEN
    row.status = outcome
    row.reviewer_id = reviewer_id
    row.reviewed_at = reviewed_at


def override_reviews(
    session: Session, cabinet_id: str, *, status: str | None = OPEN, review_id: int | None = None
) -> list[OverrideReview]:
    query = select(OverrideReviewRow).where(OverrideReviewRow.cabinet_id == cabinet_id)
    if status is not None:
        query = query.where(OverrideReviewRow.status == status)
    if review_id is not None:
        query = query.where(OverrideReviewRow.id == review_id)
    result = []
    for r in session.execute(query.order_by(OverrideReviewRow.ledger_seq)).scalars():
        queued = _aware(r.queued_at)
        assert queued is not None
        result.append(
            OverrideReview(
                r.id,
                r.ledger_seq,
                r.user_id,
                r.patient_id,
                r.item_id,
                r.reason_code,
                queued,
                r.status,
                r.reviewer_id,
            )
        )
    return result


def review_override(session: Session, review_id: int, *, reviewer_id: str, at: datetime, status: str) -> None:
    row = session.get(OverrideReviewRow, review_id)
    if row is None:
        raise KeyError(review_id)
    row.status, row.reviewer_id, row.reviewed_at = status, reviewer_id, at
    session.flush()
