"""FHIR MedicationRequest as an order feed, on the demo cabinet behind the API: a created order is stored as a
verified active order and a nurse pulls against it through the engine (unlock on the simulator over Modbus TCP),
after which its MedicationDispense names it; updates keep the patient and never reopen a stopped order; every
refusal is an OperationOutcome with the rule's code and the place in the resource. The public examples: the R4
spec's MedicationRequest is accepted as sent (its patient held here); the HL7-to-FHIR converter's orders are
refused as sent (their patient and Medication live in a Bundle this server never saw) and accepted with the
Medication contained, except one whose NDC is malformed; and the spec's MedicationDispense reads like ours."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from controller.store.database import Database
from controller.store.models import PatientRow
from tests.api.rig import Cabinet, bearer, open_cabinet
from tests.integration.fhir_rig import entries, fhir, integrator, outcome

PATIENT, ITEM, POCKET = "MRN100001", "HYDROMORPHONE-1MG-ML-SYR", (2, 2)


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    with open_cabinet(Path(tmp_path_factory.mktemp("fhir-orders"))) as cab:
        db = Database.open(cab.database_url)
        try:
            with db.write() as session:  # the patient of the spec example, as an ADT would have registered them
                session.add(PatientRow(id="pat1", family_name="Duck", given_name="Donald", allergies=""))
        finally:
            db.dispose()
        yield cab


@pytest.fixture(scope="module")
def feed(cabinet: Cabinet) -> dict[str, str]:
    return integrator(cabinet, "order-feed", frozenset({"orders:write", "fhir:read"}))


def order(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0409-1283-31"}]},
        "dosageInstruction": [
            {
                "route": {"text": "intravenous"},
                "timing": {"code": {"text": "Q4H"}},
                "asNeededBoolean": True,
                "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "mg"}}],
            }
        ],
    }
    resource.update(changes)
    return resource


def post(cab: Cabinet, headers: dict[str, str], resource: Any) -> Any:
    return cab.client.post("/fhir/MedicationRequest", content=json.dumps(resource),
                           headers=headers | {"Content-Type": "application/fhir+json"})  # fmt: skip


def put(cab: Cabinet, headers: dict[str, str], resource_id: str, resource: Any) -> Any:
    return cab.client.put(f"/fhir/MedicationRequest/{resource_id}", content=json.dumps(resource),
                          headers=headers | {"Content-Type": "application/fhir+json"})  # fmt: skip


def stored_order(cab: Cabinet, order_id: str) -> dict[str, Any]:
    db = Database.open(cab.database_url)
    try:
        with db.reader.connect() as connection:
            row = connection.execute(sa.text("SELECT * FROM orders WHERE id = :i"), {"i": order_id}).one()
    finally:
        db.dispose()
    return dict(row._mapping)


def ndc_of_item(cab: Cabinet, headers: dict[str, str]) -> str:
    medication = fhir(cab.client.get(f"/fhir/Medication/{ITEM}", headers=headers))
    return str(next(c["code"] for c in medication["code"]["coding"] if c["system"].endswith("/ndc")))


def test_a_created_order_is_verified_active_and_pulled_through_the_engine(
    cabinet: Cabinet, feed: dict[str, str]
) -> None:
    ndc = ndc_of_item(cabinet, feed)
    resource = order(medicationCodeableConcept={"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}]})
    answer = post(cabinet, feed, resource)
    created = fhir(answer, 201)
    order_id = created["id"]
    assert answer.headers["location"].endswith(f"/fhir/MedicationRequest/{order_id}")
    assert (created["status"], created["intent"]) == ("active", "order")
    assert created["medicationReference"]["reference"] == f"Medication/{ITEM}"  # the NDC found the item
    assert created["dosageInstruction"][0]["asNeededBoolean"] is True
    row = stored_order(cabinet, order_id)
    assert (row["patient_id"], row["item_id"], row["status"], bool(row["pharmacist_verified"]), bool(row["prn"])) == (
        PATIENT, ITEM, "active", True, True
    )  # fmt: skip
    assert fhir(cabinet.client.get(f"/fhir/MedicationRequest/{order_id}", headers=feed)) == created

    token = cabinet.login("NURSE1")
    try:
        removed_before = [e for e in cabinet.entries() if e["event_type"] == "dose.removed"]
        pull(cabinet, token, order_id)
        removed = [e for e in cabinet.entries() if e["event_type"] == "dose.removed"][len(removed_before) :]
    finally:
        cabinet.logout(token)
    assert [(e["order_id"], e["patient_id"], e["item_id"], e["quantity_change"]) for e in removed] == [
        (order_id, PATIENT, ITEM, -1)
    ]
    pharmacist = cabinet.login("PHARM1")
    try:
        found = entries(
            fhir(cabinet.client.get(f"/fhir/MedicationDispense?patient={PATIENT}", headers=bearer(pharmacist)))
        )
    finally:
        cabinet.logout(pharmacist)
    dispense = next(d for d in found if d["id"] == f"dose-{removed[0]['seq']}")
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{order_id}"}]
    assert dispense["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert dispense["quantity"]["value"] == 1 and dispense["status"] == "completed"
    assert dispense["type"]["coding"][0]["code"] == "dose.removed"
    assert dispense["meta"]["security"][0]["code"] == "HTEST"  # made on the simulators
    medication = dispense["contained"][0]
    assert medication["batch"]["lotNumber"] == removed[0]["lot_number"]
    assert {"system": "urn:open-adc:formulary", "code": ITEM} in [
        {k: c[k] for k in ("system", "code")} for c in medication["code"]["coding"]
    ]


def pull(cab: Cabinet, token: str, order_id: str) -> None:
    c, h = cab.client, bearer(token)

    def ok(answer: Any) -> dict[str, Any]:
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]  # type: ignore[no-any-return]

    pull_id = ok(c.post("/api/v1/pulls", json={"patient_id": PATIENT}, headers=h))["pull"]["pull_id"]
    assert ok(c.post(f"/api/v1/pulls/{pull_id}/item", json={"order_id": order_id}, headers=h))["state"] == "blind_count"
    ok(c.post(f"/api/v1/pulls/{pull_id}/count", json={"count": 10}, headers=h))
    drawer, pocket = POCKET
    cab.sims.act("io_board", "open_drawer", drawer=drawer)
    cab.sims.act("io_board", "lift_lid", drawer=drawer, pocket=pocket)
    cab.wait_until(lambda: ok(c.get(f"/api/v1/pulls/{pull_id}", headers=h))["state"] == "open")
    ok(c.post(f"/api/v1/pulls/{pull_id}/take", json={"quantity": 1}, headers=h))
    cab.sims.act("io_board", "close_lid", drawer=drawer, pocket=pocket)
    cab.sims.act("io_board", "close_drawer", drawer=drawer)
    cab.wait_until(lambda: ok(c.get(f"/api/v1/pulls/{pull_id}", headers=h))["state"] == "done")


def test_updates_keep_the_patient_and_never_reopen_a_stopped_order(cabinet: Cabinet, feed: dict[str, str]) -> None:
    created = fhir(put(cabinet, feed, "RX-FHIR-1", order(id="RX-FHIR-1")), 201)  # update as create
    assert created["id"] == "RX-FHIR-1"
    held = fhir(put(cabinet, feed, "RX-FHIR-1", order(status="on-hold")), 200)
    assert held["status"] == "on-hold" and stored_order(cabinet, "RX-FHIR-1")["status"] == "held"
    issue = outcome(put(cabinet, feed, "RX-FHIR-1", order(subject={"reference": "Patient/pat1"})), 409,
                    "fhir.patient_conflict")  # fmt: skip
    assert issue["expression"] == ["MedicationRequest.subject"]
    assert fhir(put(cabinet, feed, "RX-FHIR-1", order(status="stopped")))["status"] == "stopped"
    outcome(put(cabinet, feed, "RX-FHIR-1", order()), 409, "fhir.order_closed")
    assert stored_order(cabinet, "RX-FHIR-1")["status"] == "discontinued"
    outcome(put(cabinet, feed, "RX-FHIR-1", order(id="OTHER")), 400, "fhir.id_mismatch")
    proposal = fhir(put(cabinet, feed, "RX-FHIR-2", order(intent="proposal")), 201)
    assert proposal["intent"] == "proposal" and not stored_order(cabinet, "RX-FHIR-2")["pharmacist_verified"]


@pytest.mark.parametrize(
    "refusal",
    [
        ({"subject": {"reference": "Patient/NOBODY"}}, 422, "fhir.unknown_reference", "MedicationRequest.subject"),
        ({"subject": {"reference": "Group/1"}}, 422, "fhir.unknown_reference", "MedicationRequest.subject"),
        ({"medicationCodeableConcept": None, "medicationReference": {"reference": "Medication/NOPE"}}, 422,
         "fhir.unknown_reference", "MedicationRequest.medicationReference"),
        ({"medicationCodeableConcept": {"coding": [{"system": "urn:open-adc:formulary", "code": "NOPE"}]}}, 422,
         "fhir.unknown_reference", "MedicationRequest.medicationCodeableConcept.coding"),
        ({"medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "12-34"}]}},
         422, "fhir.unsupported_value", "MedicationRequest.medicationCodeableConcept.coding"),
        ({"status": "draft"}, 422, "fhir.unsupported_value", "MedicationRequest.status"),
        ({"intent": "option"}, 422, "fhir.unsupported_value", "MedicationRequest.intent"),
        ({"dosageInstruction": None}, 422, "fhir.invalid_resource", "MedicationRequest.dosageInstruction"),
        ({"dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": -1, "unit": "mg"}}]}]}, 422,
         "fhir.unsupported_value", "MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity"),
        ({"subject": None}, 422, "fhir.invalid_resource", "MedicationRequest.subject"),
        ({"resourceType": "Patient"}, 422, "fhir.invalid_resource", "MedicationRequest.resourceType"),
        ({"unexpected": 1}, 422, "fhir.invalid_resource", "MedicationRequest.unexpected"),
    ],
)  # fmt: skip
def test_refusals_name_the_rule_and_the_place(
    cabinet: Cabinet, feed: dict[str, str], refusal: tuple[dict[str, Any], int, str, str]
) -> None:
    change, status, code, where = refusal
    resource = {k: v for k, v in order(**change).items() if v is not None}
    issue = outcome(post(cabinet, feed, resource), status, code)
    assert where in issue["expression"], issue


def test_a_body_that_is_not_json_and_a_nurse_writing_orders_are_refused(cabinet: Cabinet, feed: dict[str, str]) -> None:
    answer = cabinet.client.post("/fhir/MedicationRequest", content=b"{not json",
                                 headers=feed | {"Content-Type": "application/fhir+json"})  # fmt: skip
    outcome(answer, 400, "api.malformed_json")
    nurse = cabinet.login("NURSE1")
    try:
        refused = post(cabinet, bearer(nurse), order())
    finally:
        cabinet.logout(nurse)
    assert refused.status_code == 403 and refused.json()["code"] == "policy.privilege_missing"


def test_the_spec_example_order_is_accepted(cabinet: Cabinet, feed: dict[str, str], shared_external: Path) -> None:
    example = json.loads((shared_external / "fhir/r4-spec-examples/medicationrequest0301.json").read_text())
    created = fhir(post(cabinet, feed, example), 201)
    assert created["id"] != "medrx0301"  # a create gets the server's id
    assert (created["status"], created["intent"]) == ("stopped", "order")  # completed is kept as discontinued
    assert created["subject"] == {"reference": "Patient/pat1"}
    assert created["medicationCodeableConcept"]["coding"] == [{"system": "http://snomed.info/sct", "code": "430127000"}]
    dosage = created["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": 1, "unit": "TAB"}  # the low end of 1-2 TAB
    assert dosage["timing"]["code"]["text"] == "1 every 4-6 h"
    assert dosage["route"]["text"] == "Oral Route" and dosage["asNeededBoolean"] is True
    assert stored_order(cabinet, created["id"])["item_id"] == "SCT:430127000"  # not stocked here


def converter_orders(shared_external: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for name in ("RDE-O11-01", "RDS-O13-01"):
        bundle = json.loads((shared_external / f"fhir/msft-hl7v2-to-fhir-r4/{name}-expected.json").read_text())
        resources = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in bundle["entry"]}
        for (kind, _), resource in resources.items():
            if kind == "MedicationRequest":
                medication = resources[tuple(resource["medicationReference"]["reference"].split("/"))]  # type: ignore[index]
                found.append((name, resource, medication))
    return found


def test_the_converter_orders_are_refused_as_sent_and_accepted_with_their_medication_contained(
    cabinet: Cabinet, feed: dict[str, str], shared_external: Path
) -> None:
    accepted, refused = [], []
    for name, resource, medication in converter_orders(shared_external):
        as_sent = outcome(post(cabinet, feed, resource), 422, "fhir.unknown_reference")
        assert as_sent["expression"] == ["MedicationRequest.subject"]
        adapted = copy.deepcopy(resource)
        adapted["subject"] = {"reference": f"Patient/{PATIENT}"}
        adapted["contained"] = [{**medication, "id": "med"}]
        adapted["medicationReference"] = {"reference": "#med"}
        answer = post(cabinet, feed, adapted)
        ndc = medication["code"]["coding"][0]["code"]
        if answer.status_code == 201:
            created = fhir(answer, 201)
            assert created["intent"] == "order"  # original-order and filler-order are orders
            accepted.append((name, ndc, stored_order(cabinet, created["id"])["item_id"]))
        else:
            issue = outcome(answer, 422, "fhir.unsupported_value")
            refused.append((name, ndc, issue["diagnostics"]))
    assert sorted(accepted) == [
        ("RDE-O11-01", "00047040230", "NDC:00047040230"),  # ampicillin: not in this formulary
        ("RDE-O11-01", "0143963401", "NDC:0143963401"),  # nicardipine: not in this formulary
    ]
    assert [(name, ndc) for name, ndc, _ in refused] == [("RDS-O13-01", "01151327")] * 2
    assert all("01151327" in why for _, _, why in refused)  # an 8-digit "NDC" is no NDC


def test_the_spec_dispense_example_reads_like_ours(cabinet: Cabinet, shared_external: Path) -> None:
    example = json.loads((shared_external / "fhir/r4-spec-examples/medicationdispense0301.json").read_text())
    pharmacist = cabinet.login("PHARM1")
    try:
        ours = entries(fhir(cabinet.client.get("/fhir/MedicationDispense", headers=bearer(pharmacist))))
    finally:
        cabinet.logout(pharmacist)
    assert ours, "the pull test leaves at least one dose record"
    dispense = ours[0]
    # The same shape a client of the spec example reads: a contained Medication coded by NDC, referenced locally.
    assert example["medicationReference"]["reference"].startswith("#")
    assert dispense["medicationReference"]["reference"] == f"#{dispense['contained'][0]['id']}"
    example_systems = {c["system"] for c in example["contained"][0]["code"]["coding"]}
    assert example_systems <= {c["system"] for c in dispense["contained"][0]["code"]["coding"]}
    for element in ("status", "subject", "performer", "location", "authorizingPrescription", "type", "quantity"):
        assert element in example and element in dispense, element
