"""What an outbound message says about one dose entry, read from the store in the entry's own transaction.

The ledger record names the ids (patient, order, item, pocket, lot); this module adds what the hospital needs to
recognise them: the patient's name and birth date and where they lie (their active encounter), the order numbers
the pharmacy system gave (``hl7_orders``), the item's name, unit, form and NDC, and the lot's expiry. Nothing
here refuses: a fact the store does not hold is left empty, so composing a message never blocks a dose.

Which NDC: the one scanned off the package at the removal when there was a scan, else the item's primary NDC.
A patient merged away by ADT^A40 is reported under the identifier that survived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select
from sqlalchemy.orm import Session

from controller.domain.transactions import EventType, LedgerRecord
from controller.store.ledger import SealedEntry
from controller.store.models import (
    CabinetRow,
    EncounterRow,
    Hl7OrderRow,
    Hl7PatientMergeRow,
    MedicationNdcRow,
    MedicationRow,
    PatientRow,
    PocketLotRow,
)


@dataclass(frozen=True, slots=True)
class PatientFacts:
    id: str
    family_name: str = ""
    given_name: str = ""
    birth_date: date | None = None
    care_area: str = ""
    room: str = ""
    bed: str = ""
    visit_number: str = ""


@dataclass(frozen=True, slots=True)
class ItemFacts:
    id: str
    name: str = ""
    unit: str = ""
    dosage_form: str = ""
    ndc: str = ""  # hyphenated as printed on the package; "" when unknown


@dataclass(frozen=True, slots=True)
class DoseFacts:
    """One dose entry as the hospital hears of it."""

    cabinet_id: str
    seq: int
    event: EventType  # dose.removed, dose.returned or dose.wasted
    at: datetime
    is_simulator: bool
    actor_id: str
    witness_id: str
    patient: PatientFacts | None
    order_id: str
    placer_number: str
    filler_number: str
    item: ItemFacts
    pocket_id: str
    units: int  # units of the item that left (removal) or came back (return); 0 for a waste
    lot_number: str
    lot_expiry: date | None
    waste_amount: str  # the wasted part in the dose unit (a waste only)
    waste_unit: str
    reason_code: str
    note: str
    details: dict[str, Any]


def read_facts(session: Session, entry: SealedEntry, record: LedgerRecord) -> DoseFacts:
    connection = session.connection()  # plain prebuilt statements: every dose pays for these reads
    body = json.loads(entry.body)
    details = dict(record.details)
    order = connection.execute(_ORDER, {"order_id": record.order_id}).first() if record.order_id else None
    # A stock entry carries its lot's expiry (the inventory store seals it in, so the central has it too); an
    # entry without it (a waste) asks the pocket's lot.
    lot_expiry = date.fromisoformat(str(details["lot_expiry"])) if details.get("lot_expiry") else None
    if lot_expiry is None and record.pocket_id and record.lot_number:
        lot_expiry = connection.execute(_LOT, {"pocket": record.pocket_id, "lot": record.lot_number}).scalar()
    is_waste = record.event_type is EventType.WASTE_RECORDED
    return DoseFacts(
        cabinet_id=entry.cabinet_id,
        seq=entry.seq,
        event=EventType(record.event_type),
        at=entry.recorded_at,
        is_simulator=bool(body.get("is_simulator")),
        actor_id=record.actor_id or "",
        witness_id=record.witness_id or "",
        patient=_patient(connection, record.patient_id, entry.cabinet_id) if record.patient_id else None,
        order_id=record.order_id or "",
        placer_number=order.placer_number if order is not None else "",
        filler_number=order.filler_number if order is not None else "",
        item=_item(connection, record.item_id or "", details),
        pocket_id=record.pocket_id or "",
        units=0 if is_waste else abs(record.quantity_change or 0),
        lot_number=record.lot_number or "",
        lot_expiry=lot_expiry,
        waste_amount=str(details.get("amount", "")) if is_waste else "",
        waste_unit=str(details.get("unit", "")) if is_waste else "",
        reason_code=record.reason_code or "",
        note=record.note or "",
        details=details,
    )


_SURVIVOR = select(Hl7PatientMergeRow.survivor_id).where(Hl7PatientMergeRow.prior_patient_id == bindparam("patient_id"))
_PATIENT = select(PatientRow.id, PatientRow.family_name, PatientRow.given_name, PatientRow.birth_date).where(
    PatientRow.id == func.coalesce(_SURVIVOR.scalar_subquery(), bindparam("patient_id"))
)
_CABINET_AREA = select(CabinetRow.care_area_id).where(CabinetRow.id == bindparam("cabinet_id")).scalar_subquery()
# The patient's active encounter, one in the cabinet's own care area first.
_ENCOUNTER = (
    select(EncounterRow.id, EncounterRow.care_area_id, EncounterRow.room, EncounterRow.bed)
    .where(EncounterRow.patient_id == bindparam("patient_id"), EncounterRow.active.is_(True))
    .order_by(case((EncounterRow.care_area_id == _CABINET_AREA, 0), else_=1), EncounterRow.id)
    .limit(1)
)
_ORDER = select(Hl7OrderRow.placer_number, Hl7OrderRow.filler_number).where(
    Hl7OrderRow.order_id == bindparam("order_id")
)
_LOT = select(PocketLotRow.expiry).where(
    PocketLotRow.pocket_id == bindparam("pocket"), PocketLotRow.lot_number == bindparam("lot")
)
_ITEM = select(
    MedicationRow.id, MedicationRow.display_name, MedicationRow.unit, MedicationRow.dosage_form, MedicationRow.ndc
).where(MedicationRow.id == bindparam("item_id"))
_PRINTED = select(MedicationNdcRow.ndc).where(MedicationNdcRow.digits == bindparam("digits"))


def _patient(connection: Connection, recorded_id: str, cabinet_id: str) -> PatientFacts:
    row = connection.execute(_PATIENT, {"patient_id": recorded_id}).first()
    if row is None:
        survivor = connection.execute(_SURVIVOR, {"patient_id": recorded_id}).scalar()
        return PatientFacts(survivor or recorded_id)
    encounter = connection.execute(_ENCOUNTER, {"patient_id": row.id, "cabinet_id": cabinet_id}).first()
    return PatientFacts(
        id=row.id,
        family_name=row.family_name,
        given_name=row.given_name,
        birth_date=row.birth_date,
        care_area=encounter.care_area_id if encounter else "",
        room=encounter.room if encounter else "",
        bed=encounter.bed if encounter else "",
        visit_number=encounter.id if encounter else "",
    )


def _item(connection: Connection, item_id: str, details: dict[str, Any]) -> ItemFacts:
    row = connection.execute(_ITEM, {"item_id": item_id}).first() if item_id else None
    scanned = details.get("scanned")
    scanned_ndc = _as_printed(connection, str(scanned.get("ndc") or "")) if isinstance(scanned, dict) else ""
    if row is None:
        return ItemFacts(item_id, ndc=scanned_ndc)
    return ItemFacts(
        id=row.id,
        name=row.display_name,
        unit=row.unit,
        dosage_form=row.dosage_form,
        ndc=scanned_ndc or row.ndc,
    )


def _as_printed(connection: Connection, ndc: str) -> str:
    """A scanned NDC (bare digits from a barcode, or hyphenated) in the formulary's hyphenated form when known."""
    printed = connection.execute(_PRINTED, {"digits": ndc.replace("-", "")}).scalar()
    return str(printed) if printed else ndc


def decimal_text(value: str) -> str:
    """An amount as HL7 NM text (no exponent, no trailing zeros); "" when it is not a number."""
    try:
        number = Decimal(value)
    except ArithmeticError:
        return ""
    return f"{number.normalize():f}" if number.is_finite() else ""
