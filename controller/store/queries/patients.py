"""Patients of a cabinet's care area and their orders, as the cabinet's screens list them.

Answers: who has an active encounter in the care area a cabinet serves, and where (room, bed); how many *due*
orders each has (active and pharmacist-verified: what a profiled cabinet may release against); one patient's
orders with the formulary item's name and schedule. Not: whether a removal is allowed (the engine and its
machines decide), merged identifiers (``fhir_reads``), or any change to a patient or an order (ADT and RDE arrive
through ``controller.integration``, FHIR orders through ``orders``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.patients import Encounter, Patient
from controller.store.models import CabinetRow, EncounterRow, MedicationRow, OrderRow, PatientRow


@dataclass(frozen=True, slots=True)
class PatientOrder:
    """One order with what the formulary says about its item (None: an item this formulary does not hold)."""

    id: str
    item_id: str
    item_name: str | None
    dea_schedule: str | None
    dose_amount: Decimal
    dose_unit: str
    route: str
    frequency: str
    status: str
    pharmacist_verified: bool
    prn: bool

    @property
    def due(self) -> bool:
        """Active and verified by a pharmacist (the same rule ``due_counts`` counts by)."""
        return self.status == "active" and self.pharmacist_verified


def patient_from_row(row: PatientRow) -> Patient:
    return Patient(
        id=row.id,
        family_name=row.family_name,
        given_name=row.given_name,
        birth_date=row.birth_date,
        allergies=tuple(line for line in row.allergies.splitlines() if line.strip()),
    )


def area_patients(session: Session, cabinet_id: str) -> list[tuple[Patient, Encounter]]:
    """Every patient with an active encounter in the cabinet's care area, by room, bed and family name."""
    rows = session.execute(
        select(PatientRow, EncounterRow)
        .join(EncounterRow, EncounterRow.patient_id == PatientRow.id)
        .join(CabinetRow, CabinetRow.care_area_id == EncounterRow.care_area_id)
        .where(CabinetRow.id == cabinet_id, EncounterRow.active.is_(True))
        .order_by(EncounterRow.room, EncounterRow.bed, PatientRow.family_name)
    ).all()
    return [
        (
            patient_from_row(patient),
            Encounter(
                id=encounter.id,
                patient_id=encounter.patient_id,
                care_area_id=encounter.care_area_id,
                room=encounter.room,
                bed=encounter.bed,
                active=encounter.active,
            ),
        )
        for patient, encounter in rows
    ]


def due_counts(session: Session, patient_ids: Sequence[str]) -> dict[str, int]:
    """Due orders per patient; a patient with none is left out."""
    counts: dict[str, int] = {}
    for (patient_id,) in session.execute(
        select(OrderRow.patient_id).where(
            OrderRow.patient_id.in_(patient_ids), OrderRow.status == "active", OrderRow.pharmacist_verified.is_(True)
        )
    ).all():
        counts[patient_id] = counts.get(patient_id, 0) + 1
    return counts


def patient_orders(session: Session, patient_id: str) -> list[PatientOrder]:
    """Every order of the patient, whatever its status, by order id."""
    rows = session.execute(
        select(OrderRow, MedicationRow)
        .outerjoin(MedicationRow, MedicationRow.id == OrderRow.item_id)
        .where(OrderRow.patient_id == patient_id)
        .order_by(OrderRow.id)
    ).all()
    return [
        PatientOrder(
            id=order.id,
            item_id=order.item_id,
            item_name=medication.display_name if medication else None,
            dea_schedule=medication.dea_schedule if medication else None,
            dose_amount=order.dose_amount,
            dose_unit=order.dose_unit,
            route=order.route,
            frequency=order.frequency,
            status=order.status,
            pharmacist_verified=order.pharmacist_verified,
            prn=order.prn,
        )
        for order, medication in rows
    ]
