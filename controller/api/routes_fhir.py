"""FHIR R4 routes under ``/fhir`` (the mapping is ``controller.api.fhir``).

Who may call: integrators with ``fhir:read`` (reads and searches) or ``orders:write`` (MedicationRequest create
and update); cabinet users by privilege, as the matching REST routes: Patient and MedicationRequest for those who
remove doses, Medication for anyone who removes, restocks or reviews, MedicationDispense (the dose records) for
pharmacists and administrators, as the ledger, Location and Device for any user; writing orders for pharmacists.
``/fhir/metadata`` is open: the CapabilityStatement carries no patient data and is how a client discovers the
server. Answers are ``application/fhir+json``; FHIR refusals are OperationOutcomes (access refusals stay
problem+json, as everywhere). Store work runs off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request

from controller.api.access import Access, runtime_of
from controller.api.fhir import capability, clinical, dispenses, order_feed, places
from controller.api.fhir.ids import HASHED_PREFIX, is_fhir_id
from controller.api.fhir.outcome import FHIR_MEDIA_TYPE, FhirError, FhirResponse, outcome_response
from controller.api.fhir.render import render
from controller.api.fhir.search import Query, read_query, searchset
from controller.api.problems import PROBLEM_MEDIA_TYPE
from controller.api.routing import PROBLEMS, engine_of
from controller.domain.users import Privilege
from controller.store.queries import Session
from controller.store.queries.orders import order_fields

router = APIRouter(prefix="/fhir", tags=["fhir"])

_RESOURCE = {"content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object", "description": "a FHIR R4 resource"}}}}
_PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_OUTCOME = {FHIR_MEDIA_TYPE: {"schema": {"type": "object", "description": "a FHIR R4 OperationOutcome"}}}
# Written out, not as models: FastAPI would put a model under the route's own media type (fhir+json).
# Access refusals (401, 403, 503) are problem+json; FHIR refusals (400, 404, 409, 422) OperationOutcomes.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": problem["description"],
        "content": _PROBLEM | (_OUTCOME if status in (400, 404, 409, 422) else {}),
    }
    for status, problem in PROBLEMS.items()
} | {200: {"description": "the resource, or a searchset Bundle", **_RESOURCE}}
WRITE_RESPONSES = {**RESPONSES, 201: {"description": "created: the order as stored", **_RESOURCE}}

READ_PATIENTS = Depends(Access(Privilege.REMOVE, scope="fhir:read"))
READ_FORMULARY = Depends(Access(Privilege.REMOVE, Privilege.RESTOCK, Privilege.REVIEW, scope="fhir:read"))
READ_DISPENSES = Depends(Access(Privilege.REVIEW, Privilege.ADMINISTER, scope="fhir:read"))
READ_LAYOUT = Depends(Access(scope="fhir:read"))
WRITE_ORDERS = Depends(Access(Privilege.REVIEW, scope="orders:write"))

Search = Callable[[Session, Query], tuple[int, list[dict[str, Any]]]]
Read = Callable[[Session, str], dict[str, Any] | None]


def _search_doc(resource_type: str) -> dict[str, Any]:
    names = [*capability.RESOURCES[resource_type][1], *capability.PAGING]
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": what}
            for name, _kind, what in names
        ]
    }


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def _answer(work: Callable[[], FhirResponse]) -> FhirResponse:
    try:
        return await asyncio.to_thread(work)
    except FhirError as error:
        return outcome_response(error)


async def _search(request: Request, resource_type: str, search: Search) -> FhirResponse:
    engine_of(request)  # 503 until the cabinet is ready
    db = runtime_of(request).db
    params = dict(request.query_params)

    def work() -> FhirResponse:
        query = read_query(params, capability.search_parameters(resource_type))
        with db.read() as session:
            total, found = search(session, query)
        return FhirResponse(render(searchset(base_url(request), resource_type, query, total, found)))

    return await _answer(work)


async def _read(request: Request, resource_type: str, requested: str, read: Read) -> FhirResponse:
    engine_of(request)  # 503 until the cabinet is ready
    db = runtime_of(request).db

    def work() -> FhirResponse:
        _check_id(requested)
        with db.read() as session:
            found = read(session, requested)
        if found is None:
            raise clinical.not_found(resource_type, requested)
        return FhirResponse(render(found))

    return await _answer(work)


def _check_id(requested: str) -> None:
    if not is_fhir_id(requested):
        raise FhirError(
            "fhir.invalid_id", f"{requested[:80]!r} is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)", issue="value"
        )


# --- metadata -----------------------------------------------------------------------------------------------------


@router.get("/metadata", summary="CapabilityStatement", response_class=FhirResponse, responses={200: _RESOURCE})
async def metadata(request: Request) -> FhirResponse:
    return FhirResponse(render(capability.capability_statement(base_url(request))))


# --- Patient ------------------------------------------------------------------------------------------------------


@router.get("/Patient", summary="Search Patient", response_class=FhirResponse, responses=RESPONSES,
            dependencies=[READ_PATIENTS], openapi_extra=_search_doc("Patient"))  # fmt: skip
async def search_patient(request: Request) -> FhirResponse:
    return await _search(request, "Patient", clinical.search_patients)


@router.get("/Patient/{resource_id}", summary="Read Patient", response_class=FhirResponse, responses=RESPONSES,
            dependencies=[READ_PATIENTS])  # fmt: skip
async def read_patient(request: Request, resource_id: str) -> FhirResponse:
    def read(session: Session, requested: str) -> dict[str, Any] | None:
        row = clinical.find_patient(session, requested)
        return clinical.patient_resource(row) if row is not None else None

    return await _read(request, "Patient", resource_id, read)


# --- Medication ---------------------------------------------------------------------------------------------------


@router.get("/Medication", summary="Search Medication (the formulary)", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_FORMULARY], openapi_extra=_search_doc("Medication"))  # fmt: skip
async def search_medication(request: Request) -> FhirResponse:
    return await _search(request, "Medication", clinical.search_medications)


@router.get("/Medication/{resource_id}", summary="Read Medication", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_FORMULARY])  # fmt: skip
async def read_medication(request: Request, resource_id: str) -> FhirResponse:
    def read(session: Session, requested: str) -> dict[str, Any] | None:
        row = clinical.find_medication(session, requested)
        return clinical.medication_resource(row) if row is not None else None

    return await _read(request, "Medication", resource_id, read)


# --- MedicationRequest --------------------------------------------------------------------------------------------


@router.get("/MedicationRequest", summary="Search MedicationRequest (orders)", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_PATIENTS],
            openapi_extra=_search_doc("MedicationRequest"))  # fmt: skip
async def search_request(request: Request) -> FhirResponse:
    return await _search(request, "MedicationRequest", clinical.search_requests)


@router.get("/MedicationRequest/{resource_id}", summary="Read MedicationRequest", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_PATIENTS])  # fmt: skip
async def read_request(request: Request, resource_id: str) -> FhirResponse:
    def read(session: Session, requested: str) -> dict[str, Any] | None:
        row = clinical.find_order(session, requested)
        return clinical.request_resource(row) if row is not None else None

    return await _read(request, "MedicationRequest", resource_id, read)


_BODY = {"requestBody": {"required": True, "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}}}}


@router.post("/MedicationRequest", summary="Create MedicationRequest (an order)", status_code=201,
             response_class=FhirResponse, responses=WRITE_RESPONSES, dependencies=[WRITE_ORDERS],
             openapi_extra=_BODY)  # fmt: skip
async def create_request(request: Request) -> FhirResponse:
    engine_of(request)  # 503 until the cabinet is ready
    db = runtime_of(request).db
    body = await request.body()

    def work() -> FhirResponse:
        parsed = order_feed.parse_request(body)
        with db.write() as session:
            values = order_feed.order_values(session, parsed)
            row = order_feed.create(session, f"FHIR-{uuid.uuid4().hex[:16].upper()}", values)
            stored = render(clinical.request_resource(row))
        return _written(request, stored, created=True)

    return await _answer(work)


@router.put("/MedicationRequest/{resource_id}", summary="Update (or create) MedicationRequest",
            response_class=FhirResponse, responses=WRITE_RESPONSES, dependencies=[WRITE_ORDERS],
            openapi_extra=_BODY)  # fmt: skip
async def update_request(request: Request, resource_id: str) -> FhirResponse:
    engine_of(request)  # 503 until the cabinet is ready
    db = runtime_of(request).db
    body = await request.body()

    def work() -> FhirResponse:
        _check_id(resource_id)
        if resource_id.startswith(HASHED_PREFIX):
            raise FhirError("fhir.invalid_id", f"ids starting {HASHED_PREFIX} are the server's own", issue="value")
        parsed = order_feed.parse_request(body)
        if parsed.id is not None and parsed.id != resource_id:
            raise FhirError(
                "fhir.id_mismatch", f"the body's id {parsed.id!r} is not the URL's {resource_id!r}", issue="invalid",
                expression=["MedicationRequest.id"],
            )  # fmt: skip
        with db.write() as session:
            values = order_feed.order_values(session, parsed)
            existing = order_fields(session, resource_id)
            if existing is None:
                row = order_feed.create(session, resource_id, values)
            else:
                row = order_feed.update(session, resource_id, existing, values)
            stored = render(clinical.request_resource(row))
        return _written(request, stored, created=existing is None)

    return await _answer(work)


def _written(request: Request, resource: dict[str, Any], *, created: bool) -> FhirResponse:
    location = f"{base_url(request)}/MedicationRequest/{resource['id']}"
    return FhirResponse(resource, status_code=201 if created else 200, headers={"Location": location})


# --- MedicationDispense -------------------------------------------------------------------------------------------


@router.get("/MedicationDispense", summary="Search MedicationDispense (dose records)", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_DISPENSES],
            openapi_extra=_search_doc("MedicationDispense"))  # fmt: skip
async def search_dispense(request: Request) -> FhirResponse:
    cabinet_id = runtime_of(request).cabinet_id
    return await _search(
        request, "MedicationDispense", lambda session, query: dispenses.search_dispenses(session, cabinet_id, query)
    )


@router.get("/MedicationDispense/{resource_id}", summary="Read MedicationDispense", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_DISPENSES])  # fmt: skip
async def read_dispense(request: Request, resource_id: str) -> FhirResponse:
    cabinet_id = runtime_of(request).cabinet_id
    return await _read(
        request,
        "MedicationDispense",
        resource_id,
        lambda session, requested: dispenses.read_dispense(session, cabinet_id, requested),
    )


# --- Location and Device ------------------------------------------------------------------------------------------


@router.get("/Location", summary="Search Location (care areas, cabinets)", response_class=FhirResponse,
            responses=RESPONSES, dependencies=[READ_LAYOUT], openapi_extra=_search_doc("Location"))  # fmt: skip
async def search_location(request: Request) -> FhirResponse:
    return await _search(request, "Location", lambda session, query: places.search(places.locations(session), query))


@router.get("/Location/{resource_id}", summary="Read Location", response_class=FhirResponse, responses=RESPONSES,
            dependencies=[READ_LAYOUT])  # fmt: skip
async def read_location(request: Request, resource_id: str) -> FhirResponse:
    return await _read(
        request, "Location", resource_id, lambda session, requested: places.read(places.locations(session), requested)
    )


@router.get("/Device", summary="Search Device (cabinets, drawers)", response_class=FhirResponse, responses=RESPONSES,
            dependencies=[READ_LAYOUT], openapi_extra=_search_doc("Device"))  # fmt: skip
async def search_device(request: Request) -> FhirResponse:
    return await _search(request, "Device", lambda session, query: places.search(places.devices(session), query))


@router.get("/Device/{resource_id}", summary="Read Device", response_class=FhirResponse, responses=RESPONSES,
            dependencies=[READ_LAYOUT])  # fmt: skip
async def read_device(request: Request, resource_id: str) -> FhirResponse:
    return await _read(
        request, "Device", resource_id, lambda session, requested: places.read(places.devices(session), requested)
    )
