"""The FHIR API at the central server, on PostgreSQL: an integrator registered at the central gets a token there
and reads the patient the central's HL7 feed admitted, creates an order that goes into the care area's census (so it
flows down to that area's cabinets), and reads every cabinet's dose records; a pharmacist signed in to the console
reads them too; a nurse, a missing scope and a wrong secret are refused, and every refusal is recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller.api.api_clients import add_client
from controller.api.central.app import create_central_app
from controller.domain.clock import FixedClock
from controller.domain.directory import CENSUS, census_key
from controller.integration.hl7 import open_listener
from controller.scenarios.hl7_exchange import exchange
from controller.store.central import downlink
from controller.store.central import tables as t
from controller.store.database import Database
from tests.fleet.scene import build
from tests.fleet.test_central_console import sign_in
from tests.store.test_inventory import FAST_HASHER

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
FHIR = {"Content-Type": "application/fhir+json"}
ADMIT = (
    "MSH|^~\\&|ADT|HOSP|ADC|CENTRAL|20261208090000||ADT^A01^ADT_A01|A1|P|2.5.1\r"
    "EVN|A01|20261208090000\r"
    "PID|1||MRN300001^^^HOSP^MR||Lee^Grace||19600310|F\r"
    "PV1|1|I|4W^410^A||||||||||||||||V300001\r"
)
ORDER = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/MRN300001"},
    "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0409-1891-01"}]},
    "dosageInstruction": [{"route": {"text": "intravenous"}, "timing": {"code": {"text": "Q2H"}},
                           "asNeededBoolean": True, "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg"}}]}],
}  # fmt: skip


@pytest.fixture
def central(central_db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    build(central_db, tmp_path)  # CAB-4W (a dose removed) and CAB-5E, their chains at the central
    secrets = {
        "his": add_client(central_db, FAST_HASHER, "his", frozenset({"fhir:read", "orders:write"}), now=NOW),
        "reports": add_client(central_db, FAST_HASHER, "reports", frozenset({"ledger:read"}), now=NOW),
    }

    async def admit() -> None:
        listener = await open_listener(central_db, FixedClock(NOW), facility="CENTRAL")
        try:
            assert (await exchange(listener.address, ADMIT)).code == "AA"
        finally:
            await listener.close()

    asyncio.run(admit())
    with TestClient(create_central_app(central_db, FixedClock(NOW), FAST_HASHER)) as client:
        yield client, secrets


def token(client: TestClient, client_id: str, secret: str, scope: str | None = None) -> Any:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return client.post("/oauth/token", data=form | ({"scope": scope} if scope else {}))


def bearer(answer: Any) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_an_integrator_reads_patients_writes_an_order_that_flows_down_and_reads_every_cabinets_doses(
    central: tuple[TestClient, dict[str, str]], central_db: Database
) -> None:
    client, secrets = central
    his = bearer(token(client, "his", secrets["his"]))
    assert client.get("/fhir/metadata").json()["resourceType"] == "CapabilityStatement"  # open, no patient data
    assert "/fhir/MedicationDispense" in client.get("/openapi.json").json()["paths"]

    patients = client.get("/fhir/Patient", params={"identifier": "MRN300001"}, headers=his)
    assert patients.status_code == 200, patients.text
    assert [e["resource"]["id"] for e in patients.json()["entry"]] == ["MRN300001"]

    created = client.post("/fhir/MedicationRequest", content=json.dumps(ORDER), headers=his | FHIR)
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    assert client.get(f"/fhir/MedicationRequest/{order_id}", headers=his).json()["status"] == "active"
    with central_db.writer.begin() as connection:  # what the publisher does every round
        downlink.reconcile(connection, CENSUS, NOW)
        [(_, _, census)] = downlink.documents(connection, CENSUS, [census_key("4W", "MRN300001")])
    assert order_id in [o["id"] for o in census["orders"]]  # on its way to 4 West's cabinets

    doses = client.get("/fhir/MedicationDispense", headers=his)
    assert doses.status_code == 200, doses.text
    [dose] = [e["resource"] for e in doses.json()["entry"]]
    assert dose["identifier"][0]["value"].startswith("CAB-4W:") and dose["location"]["reference"] == (
        "Location/cabinet.CAB-4W"
    )
    again = client.get(f"/fhir/MedicationDispense/{dose['id']}", headers=his)
    assert again.status_code == 200 and again.json()["identifier"] == dose["identifier"]
    assert client.get("/fhir/MedicationDispense/dose.CAB-9Z.1", headers=his).status_code == 404
    places = client.get("/fhir/Location", headers=his).json()
    assert {e["resource"]["id"] for e in places["entry"]} == {"area.4W", "area.5E", "cabinet.CAB-4W", "cabinet.CAB-5E"}


def test_people_use_their_console_sign_in_and_every_refusal_is_recorded(
    central: tuple[TestClient, dict[str, str]], central_db: Database
) -> None:
    client, secrets = central
    pharmacist = sign_in(client, "PHARM1")
    assert client.get("/fhir/MedicationDispense", headers=pharmacist).status_code == 200

    no_token = client.get("/fhir/Patient")
    assert no_token.status_code == 401 and no_token.json()["code"] == "auth.token_missing"
    wrong_secret = token(client, "his", "not-the-secret")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["code"] == "auth.client_invalid"
    unknown = token(client, "nobody", "x")
    assert unknown.status_code == 401 and unknown.json()["code"] == "auth.client_invalid"
    reports = bearer(token(client, "reports", secrets["reports"]))
    no_scope = client.get("/fhir/MedicationDispense", headers=reports)
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "auth.scope_missing"
    forged = client.get("/fhir/Patient", headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401 and forged.json()["code"] == "auth.token_invalid"
    technician = sign_in(client, "TECH1")
    orders_write = client.post("/fhir/MedicationRequest", content=json.dumps(ORDER), headers=technician | FHIR)
    assert orders_write.status_code == 403 and orders_write.json()["code"] == "policy.privilege_missing"

    with central_db.reader.connect() as connection:
        rows = connection.execute(
            select(t.access_refusals.c.code, t.access_refusals.c.route, t.access_refusals.c.actor_id).order_by(
                t.access_refusals.c.id
            )
        ).all()
    assert [(r.code, r.route, r.actor_id) for r in rows] == [
        ("auth.client_invalid", "/oauth/token", "client:his"),
        ("auth.client_invalid", "/oauth/token", "client:nobody"),
        ("auth.scope_missing", "/fhir/MedicationDispense", "client:reports"),
        ("auth.token_invalid", "/fhir/Patient", None),
        ("policy.privilege_missing", "/fhir/MedicationRequest", "TECH1"),
    ]
