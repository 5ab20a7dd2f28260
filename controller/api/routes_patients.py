"""Patients of the cabinet's care area (an active encounter there) and their orders; "due" orders are the ones a
profiled cabinet may release against now (active and pharmacist-verified). Read from the store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from controller.api.access import Access, runtime_of
from controller.api.problems import ApiError, to_json
from controller.api.routing import PROBLEMS, Data, DataList, engine_of
from controller.domain.users import Privilege
from controller.store.models import CabinetRow, EncounterRow, MedicationRow, OrderRow, PatientRow

router = APIRouter(
    prefix="/api/v1/patients",
    tags=["patients"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.REMOVE, scope="patients:read"))],
)

PatientId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=DataList, summary="Patients of the cabinet's care area")
async def patients(request: Request) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        rows = area_patients(session, runtime_of(request).cabinet_id)
        due = due_counts(session, [patient.id for patient, _ in rows])
        data = [_patient(patient, encounter) | {"due_orders": due.get(patient.id, 0)} for patient, encounter in rows]
    return JSONResponse({"data": data})


@router.get("/{patient_id}", response_model=Data, summary="One patient with their orders")
async def patient(
    request: Request, patient_id: PatientId, due: Annotated[bool, Query(description="only due orders")] = False
) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        found = _find(session, runtime_of(request).cabinet_id, patient_id)
        orders = _orders(session, patient_id, set(_stocked(engine)), due_only=due)
        return JSONResponse({"data": _patient(*found) | {"orders": orders}})


@router.get("/{patient_id}/orders", response_model=DataList, summary="A patient's orders")
async def orders(
    request: Request, patient_id: PatientId, due: Annotated[bool, Query(description="only due orders")] = False
) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        _find(session, runtime_of(request).cabinet_id, patient_id)
        return JSONResponse({"data": _orders(session, patient_id, set(_stocked(engine)), due_only=due)})


def _stocked(engine: Any) -> list[str]:
    return [slot.item_id for slot in engine.slots.values() if slot.item_id is not None]


def area_patients(session: DbSession, cabinet_id: str) -> list[tuple[PatientRow, EncounterRow]]:
    return [
        (patient, encounter)
        for patient, encounter in session.execute(
            select(PatientRow, EncounterRow)
            .join(EncounterRow, EncounterRow.patient_id == PatientRow.id)
            .join(CabinetRow, CabinetRow.care_area_id == EncounterRow.care_area_id)
            .where(CabinetRow.id == cabinet_id, EncounterRow.active.is_(True))
            .order_by(EncounterRow.room, EncounterRow.bed, PatientRow.family_name)
        ).all()
    ]


def _find(session: DbSession, cabinet_id: str, patient_id: str) -> tuple[PatientRow, EncounterRow]:
    for patient, encounter in area_patients(session, cabinet_id):
        if patient.id == patient_id:
            return patient, encounter
    raise ApiError("api.not_found", "no such patient in this cabinet's care area")


def _patient(patient: PatientRow, encounter: EncounterRow) -> dict[str, Any]:
    return {
        "patient_id": patient.id,
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": to_json(patient.birth_date),
        "allergies": [line for line in patient.allergies.splitlines() if line.strip()],
        "encounter_id": encounter.id,
        "room": encounter.room,
        "bed": encounter.bed,
    }


def due_counts(session: DbSession, patient_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (patient_id,) in session.execute(
        select(OrderRow.patient_id).where(
            OrderRow.patient_id.in_(patient_ids), OrderRow.status == "active", OrderRow.pharmacist_verified.is_(True)
        )
    ).all():
        counts[patient_id] = counts.get(patient_id, 0) + 1
    return counts


def _orders(session: DbSession, patient_id: str, stocked: set[str], *, due_only: bool) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OrderRow, MedicationRow)
        .outerjoin(MedicationRow, MedicationRow.id == OrderRow.item_id)
        .where(OrderRow.patient_id == patient_id)
        .order_by(OrderRow.id)
    ).all()
    result = []
    for order, medication in rows:
        due = order.status == "active" and order.pharmacist_verified
        if due_only and not due:
            continue
        result.append(
            {
                "order_id": order.id,
                "item_id": order.item_id,
                "item": medication.display_name if medication else None,
                "dea_schedule": medication.dea_schedule if medication else None,
                "dose": f"{order.dose_amount.normalize():f}",
                "dose_unit": order.dose_unit,
                "route": order.route,
                "frequency": order.frequency,
                "status": order.status,
                "pharmacist_verified": order.pharmacist_verified,
                "prn": order.prn,
                "due": due,
                "stocked_here": order.item_id in stocked,
            }
        )
    return result
