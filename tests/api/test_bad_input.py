"""Bad input never gets a 500: malformed JSON, wrong types, unknown fields, huge bodies, the wrong content type,
expired and forged tokens, a nurse on a pharmacist's route, a locked-out user, an unknown route. Each is a
problem+json with the right status and catalogue code; the security-relevant ones are ledger entries. Also: 503
until the hardware is up, and CORS closed unless configured."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from controller.api.app import create_app
from controller.api.client_tokens import KEY_FILE
from controller.api.settings import ApiSettings
from controller.settings import Settings
from tests.api.rig import CABINET, Cabinet, bearer, open_cabinet, seed_demo
from tests.api.test_pull_flow import refused

PULLS = "/api/v1/pulls"


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    with open_cabinet(Path(tmp_path_factory.mktemp("bad")), cors_origins=["https://console.example"]) as cab:
        yield cab


@pytest.fixture
def nurse(cabinet: Cabinet) -> Iterator[dict[str, str]]:
    token = cabinet.login("NURSE1")
    yield bearer(token)
    cabinet.logout(token)


def refusals(cab: Cabinet, after: int) -> list[tuple[str | None, str | None, str]]:
    return [
        (e["reason_code"], e["actor_id"], e["details"]["route"])
        for e in cab.entries(after)
        if e["event_type"] == "input.refused" and e["details"].get("kind") == "api.refused"
    ]


def last_seq(cab: Cabinet) -> int:
    seq: int = cab.entries()[-1]["seq"]
    return seq


def test_malformed_json(cabinet: Cabinet, nurse: dict[str, str]) -> None:
    answer = cabinet.client.post(
        PULLS, content=b'{"patient_id": "MRN1', headers=nurse | {"content-type": "application/json"}
    )
    refused(answer, 400, "api.malformed_json")


@pytest.mark.parametrize(
    ("body", "where", "kind"),
    [
        ({"patient_id": 42}, ["body", "patient_id"], "string_type"),
        ({}, ["body", "patient_id"], "missing"),
        ({"patient_id": "MRN100001", "admin": True}, ["body", "admin"], "extra_forbidden"),
        ({"patient_id": ""}, ["body", "patient_id"], "string_too_short"),
        (["MRN100001"], ["body"], "model_attributes_type"),
    ],
)
def test_wrong_types_unknown_and_missing_fields(
    cabinet: Cabinet, nurse: dict[str, str], body: Any, where: list[str], kind: str
) -> None:
    problem = refused(cabinet.client.post(PULLS, json=body, headers=nurse), 422, "api.validation")
    assert {"loc": where, "type": kind} in [{"loc": e["loc"], "type": e["type"]} for e in problem["errors"]]
    assert "MRN100001" not in str(problem)  # the input is never echoed back


@pytest.mark.parametrize("count", ["5", 5.5, True, -1, None])
def test_a_count_must_be_a_whole_non_negative_json_number(cabinet: Cabinet, nurse: dict[str, str], count: Any) -> None:
    problem = refused(
        cabinet.client.post(f"{PULLS}/PULL-X/count", json={"count": count}, headers=nurse), 422, "api.validation"
    )
    assert problem["errors"][0]["loc"] == ["body", "count"]


def test_huge_bodies_are_refused_before_they_are_read(cabinet: Cabinet, nurse: dict[str, str]) -> None:
    huge = b'{"patient_id": "' + b"M" * 200_000 + b'"}'
    declared = cabinet.client.post(PULLS, content=huge, headers=nurse | {"content-type": "application/json"})
    assert refused(declared, 413, "api.body_too_large")["context"]["limit"] == 64 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192]

    streamed = cabinet.client.post(PULLS, content=chunks(), headers=nurse | {"content-type": "application/json"})
    refused(streamed, 413, "api.body_too_large")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_the_body_must_be_json(cabinet: Cabinet, nurse: dict[str, str], content_type: str | None) -> None:
    headers = dict(nurse)
    if content_type:
        headers["content-type"] = content_type
    answer = cabinet.client.post(PULLS, content=b'{"patient_id": "MRN100001"}', headers=headers)
    refused(answer, 415, "api.unsupported_media_type")


def test_expired_forged_and_unknown_tokens_are_refused_and_recorded(cabinet: Cabinet) -> None:
    key = bytes.fromhex((cabinet.settings.data_dir / KEY_FILE).read_text().strip())
    now = int(time.time())
    claims = {"iss": "open-adc", "aud": f"adc:{CABINET}", "sub": "integrator", "scope": "ledger:read"}
    expired = jwt.encode(claims | {"iat": now - 3600, "exp": now - 60}, key, algorithm="HS256")
    forged = jwt.encode(claims | {"iat": now, "exp": now + 600}, b"k" * 32, algorithm="HS256")
    other_cabinet = jwt.encode(claims | {"aud": "adc:CAB-9", "iat": now, "exp": now + 600}, key, algorithm="HS256")
    unsigned = jwt.encode(claims | {"iat": now, "exp": now + 600}, None, algorithm="none")
    good = jwt.encode(claims | {"iat": now, "exp": now + 600}, key, algorithm="HS256")
    start = last_seq(cabinet)
    ledger = "/api/v1/ledger"
    refused(cabinet.client.get(ledger, headers=bearer(expired)), 401, "auth.token_expired")
    for token in (forged, other_cabinet, unsigned, "not-a-token", "a.b.c"):
        answer = cabinet.client.get(ledger, headers=bearer(token))
        refused(answer, 401, "auth.token_invalid")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert cabinet.client.get(ledger, headers=bearer(good)).status_code == 200  # the same claims, properly signed
    found = refusals(cabinet, start)
    assert [code for code, *_ in found] == ["token_expired"] + ["token_invalid"] * 5
    assert {route for *_, route in found} == {ledger}
    assert all(token not in str(cabinet.entries(start)) for token in (expired, forged))


def test_a_nurse_on_a_pharmacist_route_is_refused_and_recorded(cabinet: Cabinet, nurse: dict[str, str]) -> None:
    start = last_seq(cabinet)
    problem = refused(cabinet.client.get("/api/v1/override-reviews", headers=nurse), 403, "policy.privilege_missing")
    assert "review" in problem["detail"]
    assert refusals(cabinet, start) == [("privilege_missing", "NURSE1", "/api/v1/override-reviews")]


def test_repeated_wrong_pins_lock_the_user_out(cabinet: Cabinet) -> None:
    login = "/api/v1/cabinet/session"
    for attempt in range(5):
        problem = refused(
            cabinet.client.post(login, json={"user_id": "ANES1", "pin": "0000"}), 401, "auth.bad_credentials"
        )
        assert problem["data"]["failures"] == attempt + 1
    refused(cabinet.client.post(login, json={"user_id": "ANES1", "pin": "5555"}), 423, "session.locked_out")
    refused(cabinet.client.post(login, json={"user_id": "NOBODY", "pin": "1234"}), 401, "auth.bad_credentials")
    refused(cabinet.client.post(login, json={"user_id": "NURSE1"}), 422, "api.validation")  # no factor at all


def test_unknown_routes_and_methods(cabinet: Cabinet, nurse: dict[str, str]) -> None:
    refused(cabinet.client.get("/api/v1/nothing-here", headers=nurse), 404, "api.not_found")
    refused(cabinet.client.put("/api/v1/patients", headers=nurse), 405, "api.method_not_allowed")
    refused(cabinet.client.get(f"{PULLS}/PULL-unknown", headers=nurse), 404, "api.not_found")


def test_cors_is_open_only_to_configured_origins(cabinet: Cabinet) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    allowed = cabinet.client.options(PULLS, headers=preflight | {"origin": "https://console.example"})
    assert allowed.headers.get("access-control-allow-origin") == "https://console.example"
    assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens only, no cookies
    other = cabinet.client.options(PULLS, headers=preflight | {"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_503_until_the_hardware_is_up_and_cors_closed_by_default(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'adc.db'}"
    from controller.domain.clock import FixedClock
    from tests.api.rig import START

    seed_demo(database_url, FixedClock(START))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, cabinet_id=CABINET, io_board=f"tcp://127.0.0.1:{closed}?unit=1"
    )
    app = create_app(settings, ApiSettings(hardware_retry_s=0.2))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        problem = refused(client.get("/ready"), 503, "api.not_ready")
        assert "io_board" in problem["detail"]
        answer = client.post("/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"})
        refused(answer, 503, "api.not_ready")
        assert answer.headers["retry-after"] == "2"
        refused(client.get("/api/v1/ledger", headers=bearer("x")), 503, "api.not_ready")
        preflight = client.options(
            PULLS, headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
