"""Orders as the FHIR façade reads and files them (MedicationRequest read, search, create and update).

Answers: one order with the formulary name of its item and the pharmacy's placer and filler numbers (from
``hl7_orders``, when the order came by HL7), every order id, a page of orders for parsed search parameters (with
the total before paging), and the stored fields of one order. Files: a new order, or new fields for an existing
one, in the caller's write transaction. Not: which changes are allowed (the façade refuses moving an order to
another patient or reopening a discontinued one), or orders from the HL7 feed (``controller.integration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from controller.store.models import Hl7OrderRow, MedicationRow, OrderRow


@dataclass(frozen=True, slots=True)
class OrderFields:
    """What ``orders`` holds for an order besides its id."""

    patient_id: str
    item_id: str
    dose_amount: Decimal
    dose_unit: str
    route: str
    frequency: str
    status: str  # active, held or discontinued
    pharmacist_verified: bool
    prn: bool


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    fields: OrderFields
    item_name: str | None  # the formulary's display name; None: an item this formulary does not hold
    placer_number: str | None  # None: the order did not come by HL7
    filler_number: str | None


def order(session: Session, order_id: str) -> OrderRecord | None:
    row = session.get(OrderRow, order_id)
    return _record(session, row) if row is not None else None


def order_ids(session: Session) -> list[str]:
    return list(session.execute(select(OrderRow.id)).scalars())


def orders_page(
    session: Session,
    *,
    ids: Sequence[str] | None = None,
    patient_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    verified: Sequence[bool] | None = None,
    offset: int,
    limit: int,
) -> tuple[int, list[OrderRecord]]:
    """Orders with one of ``ids``, of one of ``patient_ids``, in one of ``statuses`` and whose
    ``pharmacist_verified`` is one of ``verified`` (None: not filtered on), by id; and how many there are."""
    conditions: list[ColumnElement[bool]] = []
    if ids is not None:
        conditions.append(OrderRow.id.in_(list(ids)))
    if patient_ids is not None:
        conditions.append(OrderRow.patient_id.in_(list(patient_ids)))
    if statuses is not None:
        conditions.append(OrderRow.status.in_(list(statuses)))
    if verified is not None:
        conditions.append(OrderRow.pharmacist_verified.in_(list(verified)))
    statement = select(OrderRow).where(*conditions).order_by(OrderRow.id)
    total = session.execute(select(func.count()).select_from(statement.order_by(None).subquery())).scalar_one()
    rows = session.execute(statement.offset(offset).limit(limit)).scalars().all()
    return int(total), [_record(session, row) for row in rows]


def order_fields(session: Session, order_id: str) -> OrderFields | None:
    row = session.get(OrderRow, order_id)
    return _fields(row) if row is not None else None


def create_order(session: Session, order_id: str, fields: OrderFields) -> OrderRecord:
    row = OrderRow(id=order_id, **asdict(fields))
    session.add(row)
    session.flush()
    return _record(session, row)


def update_order(session: Session, order_id: str, fields: OrderFields) -> OrderRecord:
    """Overwrite the fields of an order that exists (``LookupError`` if it does not)."""
    row = session.get(OrderRow, order_id)
    if row is None:
        raise LookupError(f"no order {order_id}")
    for name, value in asdict(fields).items():
        setattr(row, name, value)
    session.flush()
    return _record(session, row)


def _fields(row: OrderRow) -> OrderFields:
    return OrderFields(
        patient_id=row.patient_id,
        item_id=row.item_id,
        dose_amount=row.dose_amount,
        dose_unit=row.dose_unit,
        route=row.route,
        frequency=row.frequency,
        status=row.status,
        pharmacist_verified=row.pharmacist_verified,
        prn=row.prn,
    )


def _record(session: Session, row: OrderRow) -> OrderRecord:
    medication = session.get(MedicationRow, row.item_id)
    details = session.get(Hl7OrderRow, row.id)
    return OrderRecord(
        id=row.id,
        fields=_fields(row),
        item_name=medication.display_name if medication is not None else None,
        placer_number=details.placer_number if details is not None else None,
        filler_number=details.filler_number if details is not None else None,
    )
