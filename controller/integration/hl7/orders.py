"""Filing pharmacy order changes (one ORC group each) into ``orders`` and ``hl7_orders``.

The rules an order control must respect here:

- NW for an order number already held is refused (``hl7.duplicate_order``): a change is an XO.
- XO, DC, CA, HD and RL for an order not held are refused (``hl7.unknown_order``).
- a discontinued or cancelled order stays so: XO, HD and RL on it are refused (``hl7.order_closed``); a second
  DC or CA changes nothing.
- an order is never moved to another patient: a message whose PID names someone else than the order's patient
  (or a patient merged into them) is refused (``hl7.identity_conflict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from controller.domain.patients import OrderStatus
from controller.integration.hl7.census import Context, add_patient, survivor_of
from controller.integration.hl7.errors import Hl7Error, Location
from controller.integration.hl7.fields import Coded, text_limited
from controller.integration.hl7.give_code import resolve_item
from controller.integration.hl7.patient_segments import PatientRecord
from controller.store.models import Base, Hl7OrderRow, OrderRow, PatientRow

# Plain table statements for the new-order path, the one every new order takes.
_ORDERS = Base.metadata.tables[OrderRow.__tablename__]
_DETAILS = Base.metadata.tables[Hl7OrderRow.__tablename__]
_PATIENTS = Base.metadata.tables[PatientRow.__tablename__]
_INSERT_ORDER = insert(_ORDERS)
_INSERT_DETAILS = insert(_DETAILS)
_FIND_ORDER = select(_ORDERS.c.id).where(_ORDERS.c.id.in_(bindparam("numbers", expanding=True)))
_FIND_BY_FILLER = select(_DETAILS.c.order_id).where(_DETAILS.c.filler_number == bindparam("filler"))
_PATIENT_HELD = select(_PATIENTS.c.id).where(_PATIENTS.c.id == bindparam("patient_id"))


class OrderControl(StrEnum):
    NEW = "NW"
    CHANGE = "XO"
    DISCONTINUE = "DC"
    CANCEL = "CA"
    HOLD = "HD"
    RELEASE = "RL"


@dataclass(frozen=True, slots=True)
class Encoding:
    """What RXE and its RXR/TQ1 say about the drug and its administration."""

    give: Coded
    give_location: Location
    dose_amount: Decimal
    dose_max: Decimal | None
    dose_unit: str
    dosage_form: str
    dispense_amount: Decimal | None
    dispense_units: str
    route: str
    frequency: str
    prn: bool
    timing_quantity: str
    explicit_times: str
    priority: str
    start_time: str
    end_time: str


@dataclass(frozen=True, slots=True)
class OrderChange:
    control: OrderControl
    placer: str
    filler: str
    order_status: str  # ORC-5 as sent
    verified_by: str
    location: Location  # ORC-1 of this group, for refusals
    encoding: Encoding | None = None

    @property
    def order_id(self) -> str:
        return self.placer or self.filler


def apply_change(
    session: Session,
    change: OrderChange,
    patient: PatientRecord | None,
    allergies: tuple[str, ...] | None,
    ctx: Context,
) -> None:
    where = dataclasses.replace(change.location, field=2)
    if change.control is OrderControl.NEW:
        held = _held_order_id(session, change)
        if held is not None:
            raise Hl7Error(
                "hl7.duplicate_order", f"order {held} is already held here; send XO to change it", location=where
            )
        _new(session, change, patient, allergies, ctx)
        return
    existing = _find(session, change)
    if existing is None:
        raise Hl7Error(
            "hl7.unknown_order",
            f"{change.control.value} for order {change.order_id!r}, which this cabinet does not hold",
            location=where,
        )
    _same_patient(session, existing, patient, where)
    status = OrderStatus(existing.status)
    closing = change.control in (OrderControl.DISCONTINUE, OrderControl.CANCEL)
    if status is OrderStatus.DISCONTINUED and not closing:
        raise Hl7Error(
            "hl7.order_closed",
            f"order {existing.id} is discontinued; {change.control.value} cannot change, hold or release it",
            location=change.location,
        )
    if closing:
        existing.status = OrderStatus.DISCONTINUED.value
    elif change.control is OrderControl.HOLD:
        existing.status = OrderStatus.HELD.value
    elif change.control is OrderControl.RELEASE:
        existing.status = OrderStatus.ACTIVE.value
    elif change.encoding is not None:  # XO
        _update(session, existing, change, ctx)
    _details(session, existing.id, change, ctx)
    ctx.notes.append(f"order {existing.id}: {change.control.value} -> {existing.status}")


def _find(session: Session, change: OrderChange) -> OrderRow | None:
    order_id = _held_order_id(session, change)
    return session.get(OrderRow, order_id) if order_id is not None else None


def _held_order_id(session: Session, change: OrderChange) -> str | None:
    """The id of the order this change names: by ORC-2 or ORC-3 as our id, else by the filler number kept."""
    connection = session.connection()
    numbers = [n for n in (change.placer, change.filler) if n]
    found = set(connection.execute(_FIND_ORDER, {"numbers": numbers}).scalars())
    for number in numbers:
        if number in found:
            return number
    if change.filler:
        by_filler = connection.execute(_FIND_BY_FILLER, {"filler": change.filler}).scalar_one_or_none()
        return str(by_filler) if by_filler is not None else None
    return None


def _same_patient(session: Session, order: OrderRow, patient: PatientRecord | None, where: Location) -> None:
    if patient is None or order.patient_id in (patient.id, survivor_of(session, patient.id)):
        return
    raise Hl7Error(
        "hl7.identity_conflict",
        f"order {order.id} belongs to patient {order.patient_id}, but PID-3 names {patient.id}",
        location=where,
    )


def _new(
    session: Session,
    change: OrderChange,
    patient: PatientRecord | None,
    allergies: tuple[str, ...] | None,
    ctx: Context,
) -> None:
    if patient is None:
        raise Hl7Error(
            "hl7.segment_missing", "a new order needs PID: orders are filed by patient", location=Location("PID")
        )
    patient_id = survivor_of(session, patient.id)
    if session.connection().execute(_PATIENT_HELD, {"patient_id": patient_id}).first() is None:
        add_patient(session, patient, allergies)
        ctx.notes.append(f"patient {patient_id} created from the order's PID")
    assert change.encoding is not None
    values = _order_values(session, change.order_id, change.encoding, ctx)
    connection = session.connection()
    connection.execute(
        _INSERT_ORDER,
        {
            "id": change.order_id,
            "patient_id": patient_id,
            "status": (OrderStatus.HELD if change.order_status == "HD" else OrderStatus.ACTIVE).value,
            "pharmacist_verified": True,  # an RDE is the pharmacist-encoded order: see rde.py
            **values,
        },
    )
    connection.execute(_INSERT_DETAILS, {"order_id": change.order_id, **_detail_values(change, ctx, None)})
    ctx.notes.append(
        f"order {change.order_id} filed for {patient_id}: {values['item_id']} {values['dose_amount']} "
        f"{values['dose_unit']}"
    )


def _order_values(session: Session, order_id: str, encoding: Encoding, ctx: Context) -> dict[str, Any]:
    item = resolve_item(session, encoding.give, encoding.give_location)
    if not item.in_formulary:
        ctx.notes.append(f"order {order_id}: give code {item.item_id} is not in the formulary (not stocked here)")
    return {
        "item_id": item.item_id,
        "dose_amount": encoding.dose_amount,
        "dose_unit": encoding.dose_unit,
        "route": encoding.route,
        "frequency": encoding.frequency,
        "prn": encoding.prn,
    }


def _detail_values(change: OrderChange, ctx: Context, previous: Hl7OrderRow | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "placer_number": change.placer or (previous.placer_number if previous else ""),
        "filler_number": change.filler or (previous.filler_number if previous else ""),
        "order_control": change.control.value,
        "order_status": change.order_status,
        "verified_by": change.verified_by or (previous.verified_by if previous else ""),
        "control_id": ctx.control_id,
        "updated_at": ctx.now,
    }
    encoding = change.encoding
    if encoding is not None:
        values |= {
            "give_code": encoding.give.code or encoding.give.alt_code,
            "give_code_system": text_limited(encoding.give.system or encoding.give.alt_system, 20),
            "give_text": text_limited(encoding.give.text or encoding.give.alt_text, 250),
            "give_amount_max": encoding.dose_max,
            "dosage_form": encoding.dosage_form,
            "dispense_amount": encoding.dispense_amount,
            "dispense_units": encoding.dispense_units,
            "timing_quantity": encoding.timing_quantity,
            "explicit_times": encoding.explicit_times,
            "priority": encoding.priority,
            "start_time": encoding.start_time,
            "end_time": encoding.end_time,
        }
    elif previous is None:
        values["give_code"] = ""  # an order filed before HL7 (a layout file) has no give code as sent
    return values


def _update(session: Session, order: OrderRow, change: OrderChange, ctx: Context) -> None:
    """XO: the order takes the new encoding; its status stays."""
    assert change.encoding is not None
    for name, value in _order_values(session, order.id, change.encoding, ctx).items():
        setattr(order, name, value)


def _details(session: Session, order_id: str, change: OrderChange, ctx: Context) -> None:
    row = session.get(Hl7OrderRow, order_id)
    values = _detail_values(change, ctx, row)
    if row is None:
        session.connection().execute(_INSERT_DETAILS, {"order_id": order_id, **values})
        return
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
