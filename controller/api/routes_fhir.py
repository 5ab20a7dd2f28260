"""FHIR R4 routes under ``/fhir`` (the mapping is ``controller.api.fhir``).

Who may call: integrators with ``fhir:read`` (reads and searches) or ``orders:write`` (MedicationRequest create
and update); cabinet users by privilege, as the matching REST routes: Patient and MedicationRequest for those who
remove doses, Medication for anyone who removes, restocks or reviews, MedicationDispense (the dose records) for
pharmacists and administrators, as the ledger, Location and Device for any user; writing orders for pharmacists.
``/fhir/metadata`` is open: the CapabilityStatement carries no patient data and is how a client discovers the
server. Answers are ``application/fhir+json``; FHIR refusals are OperationOutcomes (access refusals stay
problem+json, as everywhere). Store work runs off the event loop.

The routes are built over a ``FhirHost``: the cabinet's (its store, its session and client tokens, its own dose
records) here, the central server's (the hospital's store, console sign-ins and its clients, every cabinet's dose
records) in ``controller.api.central.fhir``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from controller.store.database import Database
from controller.store.queries import Session
from controller.store.queries.orders import order_fields

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

Search = Callable[[Session, Query], tuple[int, list[dict[str, Any]]]]
Read = Callable[[Session, str], dict[str, Any] | None]
Rule = Callable[..., Any]  # a FastAPI dependency: who may call (privileges for people, a scope for integrators)


@dataclass(frozen=True)
class FhirHost:
    """Where the FHIR routes read and write, and who may call them."""

    db: Callable[[Request], Database]  # the store to use (raises 503 while it is not ready)
    access: Callable[..., Rule]  # (*privileges, scope=...) -> the rule
    search_dispenses: Callable[[Request], Search]
    read_dispense: Callable[[Request], Read]
    locations: Callable[[Session], list[dict[str, Any]]]
    devices: Callable[[Session], list[dict[str, Any]]]


def _cabinet_db(request: Request) -> Database:
    engine_of(request)  # 503 until the cabinet is ready
    return runtime_of(request).db


def _cabinet_dispenses(request: Request) -> Search:
    cabinet_id = runtime_of(request).cabinet_id
    return lambda session, query: dispenses.search_dispenses(session, cabinet_id, query)


def _cabinet_dispense(request: Request) -> Read:
    cabinet_id = runtime_of(request).cabinet_id
    return lambda session, requested: dispenses.read_dispense(session, cabinet_id, requested)


CABINET = FhirHost(_cabinet_db, Access, _cabinet_dispenses, _cabinet_dispense, places.locations, places.devices)


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


async def _search(host: FhirHost, request: Request, resource_type: str, search: Search) -> FhirResponse:
    db = host.db(request)
    params = dict(request.query_params)

    def work() -> FhirResponse:
        query = read_query(params, capability.search_parameters(resource_type))
        with db.read() as session:
            total, found = search(session, query)
        return FhirResponse(render(searchset(base_url(request), resource_type, query, total, found)))

    return await _answer(work)


async def _read(host: FhirHost, request: Request, resource_type: str, requested: str, read: Read) -> FhirResponse:
    db = host.db(request)

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


_BODY = {"requestBody": {"required": True, "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}}}}


def _written(request: Request, resource: dict[str, Any], *, created: bool) -> FhirResponse:
    location = f"{base_url(request)}/MedicationRequest/{resource['id']}"
    return FhirResponse(resource, status_code=201 if created else 200, headers={"Location": location})


def build_router(host: FhirHost) -> APIRouter:
    """The ``/fhir`` routes over ``host``."""
    router = APIRouter(prefix="/fhir", tags=["fhir"])
    _clinical_routes(router, host)
    _order_routes(router, host)
    _record_routes(router, host)
    return router


def _clinical_routes(router: APIRouter, host: FhirHost) -> None:
    read_patients = Depends(host.access(Privilege.REMOVE, scope="fhir:read"))
    read_formulary = Depends(host.access(Privilege.REMOVE, Privilege.RESTOCK, Privilege.REVIEW, scope="fhir:read"))

    # --- metadata -----------------------------------------------------------------------------------------------------

    @router.get("/metadata", summary="CapabilityStatement", response_class=FhirResponse, responses={200: _RESOURCE})
    async def metadata(request: Request) -> FhirResponse:
        return FhirResponse(render(capability.capability_statement(base_url(request))))

    # --- Patient ------------------------------------------------------------------------------------------------------

    @router.get(
        "/Patient",
        summary="Search Patient",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_patients],
        openapi_extra=_search_doc("Patient"),
    )
    async def search_patient(request: Request) -> FhirResponse:
        return await _search(host, request, "Patient", clinical.search_patients)

    @router.get(
        "/Patient/{resource_id}",
        summary="Read Patient",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_patients],
    )
    async def read_patient(request: Request, resource_id: str) -> FhirResponse:
        def read(session: Session, requested: str) -> dict[str, Any] | None:
            row = clinical.find_patient(session, requested)
            return clinical.patient_resource(row) if row is not None else None

        return await _read(host, request, "Patient", resource_id, read)

    # --- Medication ---------------------------------------------------------------------------------------------------

    @router.get(
        "/Medication",
        summary="Search Medication (the formulary)",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_formulary],
        openapi_extra=_search_doc("Medication"),
    )
    async def search_medication(request: Request) -> FhirResponse:
        return await _search(host, request, "Medication", clinical.search_medications)

    @router.get(
        "/Medication/{resource_id}",
        summary="Read Medication",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_formulary],
    )
    async def read_medication(request: Request, resource_id: str) -> FhirResponse:
        def read(session: Session, requested: str) -> dict[str, Any] | None:
            row = clinical.find_medication(session, requested)
            return clinical.medication_resource(row) if row is not None else None

        return await _read(host, request, "Medication", resource_id, read)

    # --- MedicationRequest --------------------------------------------------------------------------------------------

    @router.get(
        "/MedicationRequest",
        summary="Search MedicationRequest (orders)",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_patients],
        openapi_extra=_search_doc("MedicationRequest"),
    )
    async def search_request(request: Request) -> FhirResponse:
        return await _search(host, request, "MedicationRequest", clinical.search_requests)

    @router.get(
        "/MedicationRequest/{resource_id}",
        summary="Read MedicationRequest",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_patients],
    )
    async def read_request(request: Request, resource_id: str) -> FhirResponse:
        def read(session: Session, requested: str) -> dict[str, Any] | None:
            row = clinical.find_order(session, requested)
            return clinical.request_resource(row) if row is not None else None

        return await _read(host, request, "MedicationRequest", resource_id, read)


def _order_routes(router: APIRouter, host: FhirHost) -> None:
    write_orders = Depends(host.access(Privilege.REVIEW, scope="orders:write"))

    @router.post(
        "/MedicationRequest",
        summary="Create MedicationRequest (an order)",
        status_code=201,
        response_class=FhirResponse,
        responses=WRITE_RESPONSES,
        dependencies=[write_orders],
        openapi_extra=_BODY,
    )
    async def create_request(request: Request) -> FhirResponse:
        db = host.db(request)
        body = await request.body()

        def work() -> FhirResponse:
            parsed = order_feed.parse_request(body)
            with db.write() as session:
                values = order_feed.order_values(session, parsed)
                row = order_feed.create(session, f"FHIR-{uuid.uuid4().hex[:16].upper()}", values)
                stored = render(clinical.request_resource(row))
            return _written(request, stored, created=True)

        return await _answer(work)

    @router.put(
        "/MedicationRequest/{resource_id}",
        summary="Update (or create) MedicationRequest",
        response_class=FhirResponse,
        responses=WRITE_RESPONSES,
        dependencies=[write_orders],
        openapi_extra=_BODY,
    )
    async def update_request(request: Request, resource_id: str) -> FhirResponse:
        db = host.db(request)
        body = await request.body()

        def work() -> FhirResponse:
            _check_id(resource_id)
            if resource_id.startswith(HASHED_PREFIX):
                raise FhirError("fhir.invalid_id", f"ids starting {HASHED_PREFIX} are the server's own", issue="value")
            parsed = order_feed.parse_request(body)
            if parsed.id is not None and parsed.id != resource_id:
                raise FhirError(
                    "fhir.id_mismatch",
                    f"the body's id {parsed.id!r} is not the URL's {resource_id!r}",
                    issue="invalid",
                    expression=["MedicationRequest.id"],
                )
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


def _record_routes(router: APIRouter, host: FhirHost) -> None:
    read_dispenses = Depends(host.access(Privilege.REVIEW, Privilege.ADMINISTER, scope="fhir:read"))

    # --- MedicationDispense -------------------------------------------------------------------------------------------

    @router.get(
        "/MedicationDispense",
        summary="Search MedicationDispense (dose records)",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_dispenses],
        openapi_extra=_search_doc("MedicationDispense"),
    )
    async def search_dispense(request: Request) -> FhirResponse:
        return await _search(host, request, "MedicationDispense", host.search_dispenses(request))

    @router.get(
        "/MedicationDispense/{resource_id}",
        summary="Read MedicationDispense",
        response_class=FhirResponse,
        responses=RESPONSES,
        dependencies=[read_dispenses],
    )
    async def read_dispense(request: Request, resource_id: str) -> FhirResponse:
        return await _read(host, request, "MedicationDispense", resource_id, host.read_dispense(request))

    # --- Location and Device (small: read whole, paged here) ------------------------------------------------------

    _place_routes(router, host, "Location", "care areas, cabinets", host.locations)
    _place_routes(router, host, "Device", "cabinets, drawers", host.devices)


def _place_routes(
    router: APIRouter, host: FhirHost, resource_type: str, what: str,
    resources: Callable[[Session], list[dict[str, Any]]],
) -> None:  # fmt: skip
    read_layout = Depends(host.access(scope="fhir:read"))

    async def search(request: Request) -> FhirResponse:
        return await _search(host, request, resource_type, lambda session, query: places.search(resources(session),
                                                                                                 query))  # fmt: skip

    async def read(request: Request, resource_id: str) -> FhirResponse:
        return await _read(host, request, resource_type, resource_id,
                           lambda session, requested: places.read(resources(session), requested))  # fmt: skip

    router.add_api_route(f"/{resource_type}", search, methods=["GET"], summary=f"Search {resource_type} ({what})",
                         response_class=FhirResponse, responses=RESPONSES, dependencies=[read_layout],
                         openapi_extra=_search_doc(resource_type), name=f"search_{resource_type.lower()}")  # fmt: skip
    router.add_api_route(f"/{resource_type}/{{resource_id}}", read, methods=["GET"], summary=f"Read {resource_type}",
                         response_class=FhirResponse, responses=RESPONSES, dependencies=[read_layout],
                         name=f"read_{resource_type.lower()}")  # fmt: skip


router = build_router(CABINET)
