"""Role × route: for every route, who gets in. The expectations are written out here, route by route, from the
roles' privileges in DOMAIN.md (not read back from the routes' own rules): a nurse, a technician, a pharmacist, an
administrator, an integrator with every scope, one with a single scope, and no token at all.

Allowed means the access rule let the call through (the route may still refuse the deliberately invalid body with
422, or the engine may refuse by its own rules); denied means 403 with the access rule's own refusal, or 401
without a token. A route missing from the table fails the test, so a new route needs its row here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse

from controller.api.api_clients import SCOPES, add_client
from controller.api.app import ROUTERS
from controller.store.database import Database
from tests.api.rig import Cabinet, bearer, open_cabinet
from tests.store.test_inventory import FAST_HASHER

N, T, P, A = "NURSE1", "TECH1", "PHARM1", "ADMIN1"
ALL = frozenset({N, T, P, A})
BAD = {"unexpected": 1}  # refused by every body (unknown field): an allowed call never acts

# (method, route template, concrete path, body or None, cabinet users allowed, integrator scope or None)
MATRIX: list[tuple[str, str, str, dict[str, Any] | None, frozenset[str], str | None]] = [
    ("GET", "/api/v1/cabinet/session", "/api/v1/cabinet/session", None, ALL, None),
    ("POST", "/api/v1/cabinet/session/witness", "/api/v1/cabinet/session/witness", BAD, ALL, None),
    ("POST", "/api/v1/cabinet/session/witness/signature", "/api/v1/cabinet/session/witness/signature", BAD, ALL, None),
    ("DELETE", "/api/v1/cabinet/session/witness", "/api/v1/cabinet/session/witness", None, ALL, None),
    ("GET", "/api/v1/cabinet/session/pending", "/api/v1/cabinet/session/pending", None, ALL, None),
    ("GET", "/api/v1/patients", "/api/v1/patients", None, frozenset({N, P}), "patients:read"),
    ("GET", "/api/v1/patients/{patient_id}", "/api/v1/patients/MRN100001", None, frozenset({N, P}), "patients:read"),
    ("GET", "/api/v1/patients/{patient_id}/orders", "/api/v1/patients/MRN100001/orders", None, frozenset({N, P}),
     "patients:read"),
    ("GET", "/api/v1/medications/search", "/api/v1/medications/search?q=morphine", None, frozenset({N, T, P}),
     "formulary:read"),
    ("POST", "/api/v1/pulls", "/api/v1/pulls", BAD, frozenset({N, P}), None),
    ("GET", "/api/v1/pulls/{pull_id}", "/api/v1/pulls/PULL-X", None, frozenset({N, P}), None),
    ("POST", "/api/v1/pulls/{pull_id}/item", "/api/v1/pulls/PULL-X/item", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/pulls/{pull_id}/count", "/api/v1/pulls/PULL-X/count", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/pulls/{pull_id}/scan", "/api/v1/pulls/PULL-X/scan", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/pulls/{pull_id}/take", "/api/v1/pulls/PULL-X/take", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/pulls/{pull_id}/cancel", "/api/v1/pulls/PULL-X/cancel", None, frozenset({N, P}), None),
    ("POST", "/api/v1/wastes", "/api/v1/wastes", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/wastes/deferred", "/api/v1/wastes/deferred", BAD, frozenset({N, P}), None),
    ("GET", "/api/v1/wastes/pending", "/api/v1/wastes/pending", None, frozenset({N, P}), None),
    ("POST", "/api/v1/returns", "/api/v1/returns", BAD, frozenset({N, P}), None),
    ("POST", "/api/v1/returns/{return_id}/confirm", "/api/v1/returns/R-X/confirm", None, frozenset({N, P}), None),
    ("POST", "/api/v1/returns/{return_id}/cancel", "/api/v1/returns/R-X/cancel", None, frozenset({N, P}), None),
    ("GET", "/api/v1/restock/pick-list", "/api/v1/restock/pick-list", None, frozenset({T, P}), "inventory:read"),
    ("POST", "/api/v1/restocks", "/api/v1/restocks", BAD, frozenset({T, P}), None),
    ("POST", "/api/v1/restocks/{restock_id}/count-back", "/api/v1/restocks/RST-1/count-back", BAD, frozenset({T, P}),
     None),
    ("POST", "/api/v1/restocks/{restock_id}/scan", "/api/v1/restocks/RST-1/scan", BAD, frozenset({T, P}), None),
    ("POST", "/api/v1/restocks/{restock_id}/witness", "/api/v1/restocks/RST-1/witness", BAD, frozenset({T, P}), None),
    ("POST", "/api/v1/restocks/{restock_id}/finish", "/api/v1/restocks/RST-1/finish", None, frozenset({T, P}), None),
    ("POST", "/api/v1/restocks/{restock_id}/cancel", "/api/v1/restocks/RST-1/cancel", None, frozenset({T, P}), None),
    ("POST", "/api/v1/counts", "/api/v1/counts", BAD, frozenset({N, T, P}), None),
    ("POST", "/api/v1/counts/{count_id}/pockets/{pocket_id}", "/api/v1/counts/CNT-1/pockets/D1-P01", BAD,
     frozenset({N, T, P}), None),
    ("POST", "/api/v1/counts/{count_id}/unlock", "/api/v1/counts/CNT-1/unlock", None, frozenset({N, T, P}), None),
    ("POST", "/api/v1/counts/{count_id}/stop", "/api/v1/counts/CNT-1/stop", None, frozenset({N, T, P}), None),
    ("POST", "/api/v1/fills", "/api/v1/fills", BAD, frozenset({T, P}), None),
    ("POST", "/api/v1/fills/{fill_id}/second-count", "/api/v1/fills/FILL-1/second-count", BAD, frozenset({T, P}),
     None),
    ("POST", "/api/v1/fills/{fill_id}/cancel", "/api/v1/fills/FILL-1/cancel", None, frozenset({T, P}), None),
    ("GET", "/api/v1/discrepancies", "/api/v1/discrepancies", None, frozenset({N, P}), None),
    ("POST", "/api/v1/discrepancies/{discrepancy_id}/resolution", "/api/v1/discrepancies/1/resolution", BAD,
     frozenset({N, P}), None),
    ("POST", "/api/v1/discrepancies/{discrepancy_id}/review", "/api/v1/discrepancies/1/review", BAD,
     frozenset({P}), None),
    ("GET", "/api/v1/override-reviews", "/api/v1/override-reviews", None, frozenset({P}), None),
    ("POST", "/api/v1/override-reviews/{review_id}", "/api/v1/override-reviews/1", BAD, frozenset({P}), None),
    ("GET", "/api/v1/quarantine", "/api/v1/quarantine", None, frozenset({T, P}), None),
    ("POST", "/api/v1/recalls", "/api/v1/recalls", BAD, frozenset({P}), None),
    ("POST", "/api/v1/quarantine/{quarantine_id}/review", "/api/v1/quarantine/1/review", BAD, frozenset({P}), None),
    ("PUT", "/api/v1/cabinet/critical-override", "/api/v1/cabinet/critical-override", BAD, frozenset({A}), None),
    ("POST", "/api/v1/compartments/{compartment_id}/account", "/api/v1/compartments/D9/account", BAD, ALL, None),
    ("POST", "/api/v1/compartments/{compartment_id}/service", "/api/v1/compartments/D9/service", None, ALL, None),
    ("GET", "/api/v1/inventory/pockets", "/api/v1/inventory/pockets", None, frozenset({T, P, A}), "inventory:read"),
    ("GET", "/api/v1/inventory/expiring", "/api/v1/inventory/expiring", None, frozenset({T, P, A}),
     "inventory:read"),
    ("GET", "/api/v1/devices", "/api/v1/devices", None, ALL, "devices:read"),
    ("GET", "/api/v1/devices/faults", "/api/v1/devices/faults", None, ALL, "devices:read"),
    ("GET", "/api/v1/devices/temperature", "/api/v1/devices/temperature", None, ALL, "devices:read"),
    ("POST", "/api/v1/devices/simulator/actions", "/api/v1/devices/simulator/actions", BAD, ALL, None),
    ("GET", "/api/v1/ledger", "/api/v1/ledger", None, frozenset({P, A}), "ledger:read"),
    ("GET", "/api/v1/ledger/verify", "/api/v1/ledger/verify", None, frozenset({P, A}), "ledger:read"),
    ("GET", "/api/v1/reports", "/api/v1/reports", None, frozenset({P, A}), "ledger:read"),
    ("GET", "/api/v1/reports/{name}", "/api/v1/reports/overrides", None, frozenset({P, A}), "ledger:read"),
    ("GET", "/api/v1/admin/users", "/api/v1/admin/users", None, frozenset({A}), "admin:read"),
    ("POST", "/api/v1/admin/users", "/api/v1/admin/users", BAD, frozenset({A}), None),
    ("PATCH", "/api/v1/admin/users/{user_id}", "/api/v1/admin/users/NURSE2", BAD, frozenset({A}), None),
    ("GET", "/api/v1/admin/roles", "/api/v1/admin/roles", None, frozenset({A}), "admin:read"),
    ("GET", "/api/v1/admin/formulary", "/api/v1/admin/formulary", None, frozenset({A}), "admin:read"),
    ("GET", "/api/v1/admin/layout", "/api/v1/admin/layout", None, frozenset({A}), "admin:read"),
    ("GET", "/api/v1/admin/override-list", "/api/v1/admin/override-list", None, frozenset({A}), "admin:read"),
    ("PUT", "/api/v1/admin/override-list", "/api/v1/admin/override-list", BAD, frozenset({A}), None),
    ("GET", "/api/v1/admin/policies", "/api/v1/admin/policies", None, frozenset({A}), "admin:read"),
    ("PATCH", "/api/v1/admin/policies", "/api/v1/admin/policies", BAD, frozenset({A}), None),
    ("POST", "/api/v1/admin/users/{user_id}/lockout/clear", "/api/v1/admin/users/NURSE2/lockout/clear", BAD,
     frozenset({A}), None),
    # FHIR (a read of a dispense by a malformed id answers 422: the demo cabinet has no dose records yet)
    ("GET", "/fhir/Patient", "/fhir/Patient", None, frozenset({N, P}), "fhir:read"),
    ("GET", "/fhir/Patient/{resource_id}", "/fhir/Patient/MRN100001", None, frozenset({N, P}), "fhir:read"),
    ("GET", "/fhir/Medication", "/fhir/Medication", None, frozenset({N, T, P}), "fhir:read"),
    ("GET", "/fhir/Medication/{resource_id}", "/fhir/Medication/HYDROMORPHONE-1MG-ML-SYR", None,
     frozenset({N, T, P}), "fhir:read"),
    ("GET", "/fhir/MedicationRequest", "/fhir/MedicationRequest", None, frozenset({N, P}), "fhir:read"),
    ("GET", "/fhir/MedicationRequest/{resource_id}", "/fhir/MedicationRequest/ORD9001", None, frozenset({N, P}),
     "fhir:read"),
    ("POST", "/fhir/MedicationRequest", "/fhir/MedicationRequest", BAD, frozenset({P}), "orders:write"),
    ("PUT", "/fhir/MedicationRequest/{resource_id}", "/fhir/MedicationRequest/ORD9001", BAD, frozenset({P}),
     "orders:write"),
    ("GET", "/fhir/MedicationDispense", "/fhir/MedicationDispense", None, frozenset({P, A}), "fhir:read"),
    ("GET", "/fhir/MedicationDispense/{resource_id}", "/fhir/MedicationDispense/no_such_id", None,
     frozenset({P, A}), "fhir:read"),
    ("GET", "/fhir/Location", "/fhir/Location", None, ALL, "fhir:read"),
    ("GET", "/fhir/Location/{resource_id}", "/fhir/Location/area.4W", None, ALL, "fhir:read"),
    ("GET", "/fhir/Device", "/fhir/Device", None, ALL, "fhir:read"),
    ("GET", "/fhir/Device/{resource_id}", "/fhir/Device/cabinet.CAB-4W", None, ALL, "fhir:read"),
    ("DELETE", "/api/v1/cabinet/session", "/api/v1/cabinet/session", None, ALL, None),  # last: it logs out
]  # fmt: skip
OPEN = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("POST", "/oauth/token"),
        ("POST", "/api/v1/cabinet/session"), ("WEBSOCKET", "/api/v1/events"), ("GET", "/fhir/metadata")}  # fmt: skip


def call(cab: Cabinet, method: str, path: str, body: dict[str, Any] | None, token: str | None) -> Any:
    headers = bearer(token) if token else {}
    return cab.client.request(method, path, json=body, headers=headers)


def access_refused(answer: Any) -> bool:
    """403 from the route's access rule (it names the route), not a refusal by the engine's own rules."""
    problem = answer.json()
    return (
        answer.status_code == 403
        and problem["code"] in ("policy.privilege_missing", "auth.scope_missing")
        and ("route" in problem["context"])
    )


def client_token(cab: Cabinet, name: str, scopes: frozenset[str]) -> str:
    db = Database.open(cab.database_url)
    try:
        secret = add_client(db, FAST_HASHER, name, scopes, now=datetime.now(UTC))
    finally:
        db.dispose()
    answer = cab.client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": name, "client_secret": secret}
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_the_matrix_lists_every_route() -> None:
    declared = {
        (method, route.path)
        for module in ROUTERS
        for route in module.router.routes
        for method in getattr(route, "methods", None) or {"WEBSOCKET"}
    }
    listed = {(method, template) for method, template, *_ in MATRIX}
    assert declared - OPEN == listed


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with open_cabinet(Path(tmp_path_factory.mktemp("matrix"))) as cab:
        yield cab


@pytest.mark.parametrize("user_id", [N, T, P, A])
def test_cabinet_users(cabinet: Cabinet, user_id: str) -> None:
    token = cabinet.login(user_id)
    wrong: list[str] = []
    for method, template, path, body, allowed, _scope in MATRIX:
        answer = call(cabinet, method, path, body, token)
        assert answer.status_code != 500, f"{method} {path}: {answer.text}"
        if user_id in allowed:
            if answer.status_code == 401 or access_refused(answer):
                wrong.append(f"{method} {template}: refused {answer.status_code} {answer.json()['code']}")
        elif not access_refused(answer):
            wrong.append(f"{method} {template}: let through with {answer.status_code}")
    assert wrong == []
    cabinet.logout(token)


@pytest.mark.parametrize("scopes", [frozenset(SCOPES), frozenset({"ledger:read"})], ids=["all_scopes", "ledger_only"])
def test_integrators(cabinet: Cabinet, scopes: frozenset[str]) -> None:
    token = client_token(cabinet, f"client-{len(scopes)}", scopes)
    wrong: list[str] = []
    for method, template, path, body, _allowed, scope in MATRIX:
        answer = call(cabinet, method, path, body, token)
        assert answer.status_code != 500, f"{method} {path}: {answer.text}"
        if scope is not None and scope in scopes:
            if answer.status_code not in (200, 422):
                wrong.append(f"{method} {template}: {answer.status_code} {answer.json()['code']}")
        elif not (access_refused(answer) and answer.json()["code"] == "auth.scope_missing"):
            wrong.append(f"{method} {template}: let through with {answer.status_code}")
    assert wrong == []


def test_no_token_is_401_everywhere(cabinet: Cabinet) -> None:
    for method, template, path, body, _allowed, _scope in MATRIX:
        answer = call(cabinet, method, path, body, None)
        assert answer.status_code == 401, template
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "auth.token_missing"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_the_event_stream_needs_a_token(cabinet: Cabinet) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        cabinet.client.websocket_connect("/api/v1/events").__enter__()
    assert denied.value.status_code == 401
    token = cabinet.login(N)
    with cabinet.client.websocket_connect("/api/v1/events", subprotocols=["adc.bearer", token]) as stream:
        assert stream.receive_json()["type"] == "hello"
    cabinet.logout(token)
    only_ledger = client_token(cabinet, "no-events", frozenset({"ledger:read"}))
    with pytest.raises(WebSocketDenialResponse) as denied:
        cabinet.client.websocket_connect("/api/v1/events", headers=bearer(only_ledger)).__enter__()
    assert denied.value.status_code == 403
