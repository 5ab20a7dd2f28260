"""Reading the demo cabinet through ``/fhir`` as an integrator: every search answers a searchset Bundle and every
read the same resource as its entry, all valid R4 (fhir.resources R4B); searches by the supported parameters find
what they should and page with working links; refusals are OperationOutcomes carrying the catalogue code; and
``/fhir/metadata`` lists exactly the interactions and search parameters the routes serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from controller.api.app import ROUTERS
from tests.api.rig import Cabinet, open_cabinet
from tests.integration.fhir_rig import entries, fhir, integrator, outcome

TYPES = ("Patient", "Medication", "MedicationRequest", "MedicationDispense", "Location", "Device")


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    with open_cabinet(Path(tmp_path_factory.mktemp("fhir"))) as cab:
        yield cab


@pytest.fixture(scope="module")
def reader(cabinet: Cabinet) -> dict[str, str]:
    return integrator(cabinet, "fhir-reader", frozenset({"fhir:read"}))


def search(cab: Cabinet, headers: dict[str, str], path: str) -> dict[str, Any]:
    return fhir(cab.client.get(path, headers=headers))


def test_metadata_lists_exactly_what_the_routes_serve(cabinet: Cabinet) -> None:
    statement = fhir(cabinet.client.get("/fhir/metadata"))  # open: no token
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    listed = {
        (resource["type"], interaction["code"])
        for resource in statement["rest"][0]["resource"]
        for interaction in resource["interaction"]
    }
    served = set()
    for route in (r for module in ROUTERS for r in module.router.routes):
        parts = getattr(route, "path", "").split("/")
        if parts[1:2] != ["fhir"] or parts[2] == "metadata":
            continue
        for method in route.methods:  # type: ignore[attr-defined]
            kind = {"GET": "read" if len(parts) == 4 else "search-type", "POST": "create", "PUT": "update"}[method]
            served.add((parts[2], kind))
    assert listed == served
    assert {r["type"] for r in statement["rest"][0]["resource"]} == set(TYPES)
    requests = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    assert {p["name"] for p in requests["searchParam"]} >= {"_id", "patient", "status"}
    assert {p["name"] for p in statement["rest"][0]["searchParam"]} == {"_count", "_offset"}


@pytest.mark.parametrize("resource_type", TYPES)
def test_every_search_and_read_is_valid_r4(cabinet: Cabinet, reader: dict[str, str], resource_type: str) -> None:
    bundle = search(cabinet, reader, f"/fhir/{resource_type}?_count=100")
    found = entries(bundle)
    if resource_type != "MedicationDispense":  # the demo cabinet has no dose records yet (see the order tests)
        assert found, resource_type
    assert bundle["total"] == len(found)
    for entry, resource in zip(bundle.get("entry", []), found, strict=True):
        assert resource["resourceType"] == resource_type
        assert entry["fullUrl"].endswith(f"/fhir/{resource_type}/{resource['id']}")
        assert fhir(cabinet.client.get(f"/fhir/{resource_type}/{resource['id']}", headers=reader)) == resource


def test_patient_medication_and_order_contents(cabinet: Cabinet, reader: dict[str, str]) -> None:
    patient = fhir(cabinet.client.get("/fhir/Patient/MRN100001", headers=reader))
    assert patient["name"] == [{"family": "Garcia", "given": ["Maria"]}]
    assert patient["identifier"][0]["value"] == "MRN100001"
    medication = fhir(cabinet.client.get("/fhir/Medication/MORPHINE-4MG-ML-CARP", headers=reader))
    ndcs = [c["code"] for c in medication["code"]["coding"] if c["system"] == "http://hl7.org/fhir/sid/ndc"]
    assert ndcs == ["0409-1891-01", "0409-1891-03"]  # primary first, then the alternate
    order = fhir(cabinet.client.get("/fhir/MedicationRequest/ORD9001", headers=reader))
    assert (order["status"], order["intent"]) == ("active", "order")
    assert order["subject"] == {"reference": "Patient/MRN100001"}
    assert order["medicationReference"]["reference"] == "Medication/HYDROMORPHONE-1MG-ML-SYR"
    dose = order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose["unit"] == "mg" and dose["value"] > 0
    cabinet_place = fhir(cabinet.client.get("/fhir/Location/cabinet.CAB-4W", headers=reader))
    assert cabinet_place["partOf"] == {"reference": "Location/area.4W"}
    assert cabinet_place["physicalType"]["coding"][0]["code"] == "ca"
    drawers = entries(search(cabinet, reader, "/fhir/Device?_count=100"))
    assert {d["parent"]["reference"] for d in drawers if d["id"].startswith("drawer.")} == {"Device/cabinet.CAB-4W"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("code=0409-1891-03", ["MORPHINE-4MG-ML-CARP"]),  # an alternate NDC, hyphenated
        ("code=http://hl7.org/fhir/sid/ndc|0409189101", ["MORPHINE-4MG-ML-CARP"]),  # bare 10 digits, with system
        ("code=urn:open-adc:formulary|MORPHINE-4MG-ML-CARP", ["MORPHINE-4MG-ML-CARP"]),
        ("code=http://snomed.info/sct|430127000", []),
        ("_id=MORPHINE-4MG-ML-CARP,HYDROMORPHONE-1MG-ML-SYR", ["HYDROMORPHONE-1MG-ML-SYR", "MORPHINE-4MG-ML-CARP"]),
    ],
)
def test_medication_search(cabinet: Cabinet, reader: dict[str, str], query: str, expected: list[str]) -> None:
    assert [m["id"] for m in entries(search(cabinet, reader, f"/fhir/Medication?{query}"))] == expected


def test_order_search_by_patient_and_status_pages_with_its_links(cabinet: Cabinet, reader: dict[str, str]) -> None:
    everything = entries(search(cabinet, reader, "/fhir/MedicationRequest?patient=Patient/MRN100001&_count=100"))
    assert len(everything) >= 3 and {o["subject"]["reference"] for o in everything} == {"Patient/MRN100001"}
    active = entries(search(cabinet, reader, "/fhir/MedicationRequest?patient=MRN100001&status=active&_count=100"))
    assert {o["status"] for o in active} == {"active"} and len(active) <= len(everything)
    assert entries(search(cabinet, reader, "/fhir/MedicationRequest?patient=MRN100001&status=on-hold")) == [
        o for o in everything if o["status"] == "on-hold"
    ]
    paged: list[dict[str, Any]] = []
    bundle = search(cabinet, reader, "/fhir/MedicationRequest?patient=MRN100001&_count=2&ignored=1")
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "ignored" not in self_link and "patient=MRN100001" in self_link  # what was applied, only
    while True:
        paged += entries(bundle)
        assert bundle["total"] == len(everything)
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        url = urlsplit(following[0])
        bundle = search(cabinet, reader, f"{url.path}?{url.query}")
    assert [o["id"] for o in paged] == [o["id"] for o in everything]
    assert [p["id"] for p in entries(search(cabinet, reader, "/fhir/Patient?identifier=MRN100001"))] == ["MRN100001"]


def test_refusals_are_operation_outcomes(cabinet: Cabinet, reader: dict[str, str]) -> None:
    outcome(cabinet.client.get("/fhir/Patient/NOBODY", headers=reader), 404, "api.not_found")
    issue = outcome(cabinet.client.get("/fhir/Patient/bad_id!", headers=reader), 422, "fhir.invalid_id")
    assert issue["code"] == "value"
    outcome(cabinet.client.get("/fhir/MedicationDispense/dose-999999", headers=reader), 404, "api.not_found")
    outcome(cabinet.client.get("/fhir/Patient?_count=many", headers=reader), 400, "fhir.bad_search")
    outcome(cabinet.client.get("/fhir/Patient?_count=1000", headers=reader), 400, "fhir.bad_search")
    outcome(cabinet.client.get("/fhir/MedicationRequest?patient=Device/x", headers=reader), 400, "fhir.bad_search")
    # Access refusals are the API's own, problem+json, before any FHIR code runs.
    refused = cabinet.client.get(
        "/fhir/Patient", headers=integrator(cabinet, "ledger-only", frozenset({"ledger:read"}))
    )
    assert refused.status_code == 403 and refused.json()["code"] == "auth.scope_missing"
