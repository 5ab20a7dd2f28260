"""What the FHIR façade (``controller.api.fhir``) reads: patients, the formulary, dose records and the layout.

Answers, as plain records: one patient, medication or dose entry by its store id (or the sequence number), every
store id of a table (the façade finds a hashed FHIR id among them; those tables are small), a page of patients,
medications or dose entries for the search parameters the façade has already parsed (with the total before
paging), the identifiers merged into a patient, and the care areas, cabinets and drawers. Not: FHIR itself (ids,
tokens, resources and Bundles are the façade's), orders (``orders``), or any write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from controller.domain.patients import CareArea, Patient
from controller.domain.topology import Cabinet
from controller.store.models import (
    CabinetRow,
    CareAreaRow,
    Hl7PatientMergeRow,
    LedgerEntryRow,
    MedicationNdcRow,
    MedicationRow,
    PatientRow,
    PocketLotRow,
)
from controller.store.queries.patients import patient_from_row

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredNdc:
    ndc: str  # hyphenated as printed
    is_primary: bool


@dataclass(frozen=True, slots=True)
class MedicationRecord:
    id: str
    display_name: str
    dosage_form: str
    unit: str
    ndcs: tuple[StoredNdc, ...]  # every NDC of the item, in the order the store lists them


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """A medication matches when one of its NDCs has one of ``ndc_digits`` (bare digits) or its id is one of
    ``formulary_ids``; with both empty nothing matches."""

    ndc_digits: tuple[str, ...] = ()
    formulary_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DispenseEntry:
    """A dose entry of the ledger, parsed, with the formulary item it names (None: not in the formulary, or no
    item) and the expiry of the lot it names in its pocket (None: no lot, or the lot is gone from the pocket)."""

    entry: dict[str, Any]
    medication: MedicationRecord | None
    lot_expiry: date | None


@dataclass(frozen=True, slots=True)
class DrawerPlace:
    id: str
    label: str
    kind: str


# --- patients -----------------------------------------------------------------------------------------------------


def patient(session: Session, patient_id: str) -> Patient | None:
    row = session.get(PatientRow, patient_id)
    return patient_from_row(row) if row is not None else None


def has_patient(session: Session, patient_id: str) -> bool:
    return session.get(PatientRow, patient_id) is not None


def patient_ids(session: Session) -> list[str]:
    return list(session.execute(select(PatientRow.id)).scalars())


def patients_page(
    session: Session, *, id_sets: Sequence[Sequence[str]] = (), offset: int, limit: int
) -> tuple[int, list[Patient]]:
    """Patients whose id is in every one of ``id_sets`` (none given: all), by id; and how many there are."""
    conditions = [PatientRow.id.in_(ids) for ids in id_sets]
    total, rows = _page(session, select(PatientRow).where(*conditions).order_by(PatientRow.id), offset, limit)
    return total, [patient_from_row(row) for row in rows]


def identifiers_with_merged(session: Session, patient_ids: Sequence[str]) -> list[str]:
    """The patients given and every identifier merged into them (ledger entries keep the id they were written
    with)."""
    merged = session.execute(
        select(Hl7PatientMergeRow.prior_patient_id).where(Hl7PatientMergeRow.survivor_id.in_(patient_ids))
    ).scalars()
    return [*patient_ids, *merged]


# --- the formulary ------------------------------------------------------------------------------------------------


def medication(session: Session, medication_id: str) -> MedicationRecord | None:
    row = session.get(MedicationRow, medication_id)
    return _medication(row) if row is not None else None


def has_medication(session: Session, medication_id: str) -> bool:
    return session.get(MedicationRow, medication_id) is not None


def medication_ids(session: Session) -> list[str]:
    return list(session.execute(select(MedicationRow.id)).scalars())


def medications_with_ndc_digits(session: Session, candidates: Sequence[str]) -> list[str]:
    """The items (sorted, each once) holding an NDC with one of these bare digit strings."""
    found = session.execute(
        select(MedicationNdcRow.medication_id).where(MedicationNdcRow.digits.in_(candidates))
    ).scalars()
    return sorted(set(found))


def medications_page(
    session: Session, *, id_sets: Sequence[Sequence[str]] = (), codes: CodeMatch | None = None, offset: int, limit: int
) -> tuple[int, list[MedicationRecord]]:
    """Medications whose id is in every one of ``id_sets`` and that match ``codes`` (None: any), by id; and how
    many there are."""
    conditions: list[ColumnElement[bool]] = [MedicationRow.id.in_(ids) for ids in id_sets]
    if codes is not None:
        # One subquery per code, each a seek on the unique ``digits`` index.
        matches: list[ColumnElement[bool]] = [
            MedicationRow.id.in_(select(MedicationNdcRow.medication_id).where(MedicationNdcRow.digits == digits))
            for digits in codes.ndc_digits
        ]
        matches += [MedicationRow.id == code for code in codes.formulary_ids]
        conditions.append(or_(*matches) if matches else MedicationRow.id.is_(None))
    total, rows = _page(session, select(MedicationRow).where(*conditions).order_by(MedicationRow.id), offset, limit)
    return total, [_medication(row) for row in rows]


def _medication(row: MedicationRow) -> MedicationRecord:
    return MedicationRecord(
        id=row.id,
        display_name=row.display_name,
        dosage_form=row.dosage_form,
        unit=row.unit,
        ndcs=tuple(StoredNdc(n.ndc, n.is_primary) for n in row.ndcs),
    )


# --- dose entries of the ledger -----------------------------------------------------------------------------------


def dispenses_page(
    session: Session,
    cabinet_id: str,
    event_types: Sequence[str],
    *,
    seqs: Sequence[int] | None = None,
    patient_ids: Sequence[str] | None = None,
    offset: int,
    limit: int,
) -> tuple[int, list[DispenseEntry]]:
    """The cabinet's entries of ``event_types``, with one of ``seqs`` and naming one of ``patient_ids`` (None: not
    filtered on), in sequence order; and how many there are."""
    conditions: list[ColumnElement[bool]] = [
        LedgerEntryRow.cabinet_id == cabinet_id,
        LedgerEntryRow.event_type.in_(list(event_types)),
    ]
    if seqs is not None:
        conditions.append(LedgerEntryRow.seq.in_(list(seqs)))
    if patient_ids is not None:
        conditions.append(LedgerEntryRow.patient_id.in_(list(patient_ids)))
    total = session.execute(select(func.count()).select_from(LedgerEntryRow).where(*conditions)).scalar_one()
    bodies = session.execute(
        select(LedgerEntryRow.body).where(*conditions).order_by(LedgerEntryRow.seq).offset(offset).limit(limit)
    ).scalars()
    return int(total), [_dispense(session, body) for body in bodies]


def dispense(session: Session, cabinet_id: str, seq: int, event_types: Sequence[str]) -> DispenseEntry | None:
    """The cabinet's entry ``seq`` if it is of one of ``event_types``."""
    body = session.execute(
        select(LedgerEntryRow.body).where(
            LedgerEntryRow.cabinet_id == cabinet_id,
            LedgerEntryRow.seq == seq,
            LedgerEntryRow.event_type.in_(list(event_types)),
        )
    ).scalar_one_or_none()
    return _dispense(session, body) if body is not None else None


def _dispense(session: Session, body: str) -> DispenseEntry:
    entry: dict[str, Any] = json.loads(body)
    item_id = str(entry.get("item_id") or "")
    row = session.get(MedicationRow, item_id) if item_id else None
    expiry = None
    if lot := entry.get("lot_number"):
        expiry = session.execute(
            select(PocketLotRow.expiry).where(
                PocketLotRow.pocket_id == entry.get("pocket_id"), PocketLotRow.lot_number == lot
            )
        ).scalar_one_or_none()
    return DispenseEntry(entry, _medication(row) if row is not None else None, expiry)


# --- the layout (small: one hospital's areas and cabinets, read whole) ---------------------------------------------


def care_areas(session: Session) -> list[CareArea]:
    rows = session.execute(select(CareAreaRow).order_by(CareAreaRow.id)).scalars()
    return [CareArea(row.id, row.name, row.profiled) for row in rows]


def cabinets(session: Session) -> list[Cabinet]:
    rows = session.execute(select(CabinetRow).order_by(CabinetRow.id)).scalars()
    return [Cabinet(row.id, row.name, row.care_area_id) for row in rows]


def cabinets_with_drawers(session: Session) -> list[tuple[Cabinet, tuple[DrawerPlace, ...]]]:
    """Every cabinet with its drawers by position."""
    rows = session.execute(select(CabinetRow).order_by(CabinetRow.id)).scalars()
    return [
        (
            Cabinet(row.id, row.name, row.care_area_id),
            tuple(DrawerPlace(drawer.id, drawer.label, drawer.kind) for drawer in row.drawers),
        )
        for row in rows
    ]


# --- shared -------------------------------------------------------------------------------------------------------


def _page(session: Session, statement: Select[T], offset: int, limit: int) -> tuple[int, list[T]]:
    total = session.execute(select(func.count()).select_from(statement.order_by(None).subquery())).scalar_one()
    rows = session.execute(statement.offset(offset).limit(limit)).scalars().all()
    return int(total), list(rows)
