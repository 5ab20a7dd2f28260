"""Patients of the cabinet's care area (an active encounter there) and their orders; "due" orders are the ones a
profiled cabinet may release against now (active and pharmacist-verified). Read from the store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from controller.api.access import Access, runtime_of
from controller.api.problems import ApiError, to_json
from controller.api.routing import PROBLEMS, Data, DataList, engine_of
from controller.domain.patients import Encounter, Patient
from controller.domain.users import Privilege
from controller.store.queries.inventory_reads import stocked_items
from controller.store.queries.patients import PatientOrder, area_patients, due_counts, patient_orders

__all__ = ["area_patients", "due_counts", "router"]  # bench/api.py imports the two queries from here

router = APIRouter(
    prefix="/api/v1/patients",
    tags=["patients"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.REMOVE, scope="patients:read"))],
)

PatientId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=DataList, summary="Patients of the cabinet's care area")
async def patients(request: Request) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    with runtime.db.read() as session:
        rows = area_patients(session, runtime.cabinet_id)
        due = due_counts(session, [patient.id for patient, _ in rows])
    data = [_patient(patient, encounter) | {"due_orders": due.get(patient.id, 0)} for patient, encounter in rows]
    return JSONResponse({"data": data})


@router.get("/{patient_id}", response_model=Data, summary="One patient with their orders")
async def patient(
    request: Request, patient_id: PatientId, due: Annotated[bool, Query(description="only due orders")] = False
) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    with runtime.db.read() as session:
        found = _find(area_patients(session, runtime.cabinet_id), patient_id)
        orders = patient_orders(session, patient_id)
        stocked = stocked_items(session, runtime.cabinet_id)
    return JSONResponse({"data": _patient(*found) | {"orders": _orders(orders, stocked, due_only=due)}})


@router.get("/{patient_id}/orders", response_model=DataList, summary="A patient's orders")
async def orders(
    request: Request, patient_id: PatientId, due: Annotated[bool, Query(description="only due orders")] = False
) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    with runtime.db.read() as session:
        _find(area_patients(session, runtime.cabinet_id), patient_id)
        found = patient_orders(session, patient_id)
        stocked = stocked_items(session, runtime.cabinet_id)
    return JSONResponse({"data": _orders(found, stocked, due_only=due)})


def _find(rows: list[tuple[Patient, Encounter]], patient_id: str) -> tuple[Patient, Encounter]:
    for patient, encounter in rows:
        if patient.id == patient_id:
            return patient, encounter
    raise ApiError("api.not_found", "no such patient in this cabinet's care area")


def _patient(patient: Patient, encounter: Encounter) -> dict[str, Any]:
    return {
        "patient_id": patient.id,
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": to_json(patient.birth_date),
        "allergies": list(patient.allergies),
        "encounter_id": encounter.id,
        "room": encounter.room,
        "bed": encounter.bed,
    }


def _orders(found: list[PatientOrder], stocked: frozenset[str], *, due_only: bool) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "item_id": order.item_id,
            "item": order.item_name,
            "dea_schedule": order.dea_schedule,
            "dose": f"{order.dose_amount.normalize():f}",
            "dose_unit": order.dose_unit,
            "route": order.route,
            "frequency": order.frequency,
            "status": order.status,
            "pharmacist_verified": order.pharmacist_verified,
            "prn": order.prn,
            "due": order.due,
            "stocked_here": order.item_id in stocked,
        }
        for order in found
        if order.due or not due_only
    ]
