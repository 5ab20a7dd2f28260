"""The FHIR R4 API at the central server: the same routes and resources as a cabinet's (``routes_fhir``), over
the hospital's store. Patients, the formulary and orders are the central's (fed by its HL7 listener); an order
created or updated here goes down to the cabinets of the patient's care area with the census; MedicationDispense
is every cabinet's dose records, read from the chains the central received; Location and Device are the
registered cabinets and the care areas they serve. Integrators get a token at the central's ``/oauth/token``
(clients added with ``adc central client add``); people use their central console sign-in.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request

from controller.api.central.access import CentralAccess
from controller.api.fhir import dispenses, places
from controller.api.routes_fhir import FhirHost, Read, Search, build_router
from controller.store.database import Database


def _db(request: Request) -> Database:
    return cast(Database, request.app.state.db)


def _dispenses(_request: Request) -> Search:
    return dispenses.search_fleet_dispenses


def _dispense(_request: Request) -> Read:
    return dispenses.read_fleet_dispense


CENTRAL = FhirHost(_db, CentralAccess, _dispenses, _dispense, places.fleet_locations, places.fleet_devices)


def central_fhir_router() -> APIRouter:
    return build_router(CENTRAL)
