"""Location (care areas, cabinets) and Device (cabinets, drawers), read from the store's layout.

- Location ``area.<id>``: a care area (physical type ``wa``, ward), described as profiled or not.
- Location ``cabinet.<id>``: a cabinet (physical type ``ca``, cabinet), part of its care area's Location.
- Device ``cabinet.<id>``: the cabinet as a device (type: automated dispensing cabinet), at its Location.
- Device ``drawer.<id>``: each drawer (type: its kind), whose ``parent`` is the cabinet Device.

At the central server: the registered cabinets and the care areas they serve (``fleet_locations``,
``fleet_devices``), without drawers.

Search: ``_id`` (plus paging). These tables are small (one hospital's layout), so they are read whole and paged
here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from controller.api.fhir.ids import fhir_id
from controller.api.fhir.search import Query
from controller.domain.patients import CareArea
from controller.domain.topology import Cabinet
from controller.store.central import fhir_reads as fleet_reads
from controller.store.queries import Session, fhir_reads
from controller.store.queries.fhir_reads import DrawerPlace

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
AREA_SYSTEM = "urn:open-adc:care-area"
CABINET_SYSTEM = "urn:open-adc:cabinet"
DRAWER_SYSTEM = "urn:open-adc:drawer"


def area_ref(area_id: str) -> str:
    return fhir_id(f"area.{area_id}")


def cabinet_ref(cabinet_id: str) -> str:
    return fhir_id(f"cabinet.{cabinet_id}")


def drawer_ref(drawer_id: str) -> str:
    return fhir_id(f"drawer.{drawer_id}")


def locations(session: Session) -> list[dict[str, Any]]:
    return location_resources(fhir_reads.care_areas(session), fhir_reads.cabinets(session))


def fleet_locations(session: Session) -> list[dict[str, Any]]:
    """At the central: the care areas the registered cabinets serve, and the cabinets."""
    return location_resources(*fleet_reads.fleet_places(session))


def fleet_devices(session: Session) -> list[dict[str, Any]]:
    """At the central: each registered cabinet (its drawers are known at the cabinet only)."""
    return device_resources([(cabinet, ()) for cabinet in fleet_reads.fleet_places(session)[1]])


def location_resources(areas: Iterable[CareArea], cabinets: Iterable[Cabinet]) -> list[dict[str, Any]]:
    found = []
    for area in areas:
        found.append(
            {
                "resourceType": "Location",
                "id": area_ref(area.id),
                "identifier": [{"system": AREA_SYSTEM, "value": area.id}],
                "status": "active",
                "name": area.name,
                "description": "profiled care area" if area.profiled else "non-profiled care area",
                "mode": "instance",
                "physicalType": _physical("wa", "Ward"),
            }
        )
    for cabinet in cabinets:
        found.append(
            {
                "resourceType": "Location",
                "id": cabinet_ref(cabinet.id),
                "identifier": [{"system": CABINET_SYSTEM, "value": cabinet.id}],
                "status": "active",
                "name": cabinet.name,
                "description": "automated dispensing cabinet",
                "mode": "instance",
                "physicalType": _physical("ca", "Cabinet"),
                "partOf": {"reference": f"Location/{area_ref(cabinet.care_area_id)}"},
            }
        )
    return found


def devices(session: Session) -> list[dict[str, Any]]:
    return device_resources(fhir_reads.cabinets_with_drawers(session))


def device_resources(cabinets: Iterable[tuple[Cabinet, Sequence[DrawerPlace]]]) -> list[dict[str, Any]]:
    found = []
    for cabinet, drawers in cabinets:
        found.append(
            {
                "resourceType": "Device",
                "id": cabinet_ref(cabinet.id),
                "identifier": [{"system": CABINET_SYSTEM, "value": cabinet.id}],
                "status": "active",
                "deviceName": [{"name": cabinet.name, "type": "user-friendly-name"}],
                "type": {"text": "automated dispensing cabinet"},
                "location": {"reference": f"Location/{cabinet_ref(cabinet.id)}"},
            }
        )
        for drawer in drawers:
            found.append(
                {
                    "resourceType": "Device",
                    "id": drawer_ref(drawer.id),
                    "identifier": [{"system": DRAWER_SYSTEM, "value": drawer.id}],
                    "status": "active",
                    "deviceName": [{"name": drawer.label or drawer.id, "type": "user-friendly-name"}],
                    "type": {"text": f"{drawer.kind} drawer"},
                    "location": {"reference": f"Location/{cabinet_ref(cabinet.id)}"},
                    "parent": {"reference": f"Device/{cabinet_ref(cabinet.id)}"},
                }
            )
    return found


def search(resources: list[dict[str, Any]], query: Query) -> tuple[int, list[dict[str, Any]]]:
    if (ids := query.get("_id")) is not None:
        resources = [r for r in resources if r["id"] in ids]
    return len(resources), resources[query.offset : query.offset + query.count]


def read(resources: list[dict[str, Any]], requested: str) -> dict[str, Any] | None:
    return next((r for r in resources if r["id"] == requested), None)


def _physical(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": PHYSICAL_TYPE, "code": code, "display": display}]}
