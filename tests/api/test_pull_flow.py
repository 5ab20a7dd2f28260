"""The nurse's pull through HTTP, end to end: a schedule II dose (hydromorphone 1 mg/mL, half of it ordered) with a
blind count, the drawer and lid unlocked over Modbus TCP on the simulator, a person opening and closing them
(simulator control socket), the removal recorded, then half wasted with a witness who is refused when it is the
nurse herself. The ledger holds it all; the event stream showed it; the logs never named the patient. A session
token dies with its session."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api import routes_patients
from tests.api.rig import Cabinet, bearer, open_cabinet

PATIENT, ORDER, ITEM = "MRN100001", "ORD9001", "HYDROMORPHONE-1MG-ML-SYR"
PATIENT_NAMES = ("Garcia", "Maria", PATIENT)


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the process logged, less the test client's own request lines (httpx, not the server)."""
    return "\n".join(record.getMessage() for record in caplog.records if not record.name.startswith("httpx"))


def ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def refused(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code and problem["type"].endswith(code) and problem["detail"]
    return problem


def pull_one(cab: Cabinet, token: str) -> str:
    """Start, choose the order, count blind, open, take one, close: returns the pull id."""
    c, h = cab.client, bearer(token)
    pull_id: str = ok(c.post("/api/v1/pulls", json={"patient_id": PATIENT}, headers=h))["pull"]["pull_id"]
    chosen = ok(c.post(f"/api/v1/pulls/{pull_id}/item", json={"order_id": ORDER}, headers=h))
    assert chosen["state"] == "blind_count" and chosen["pull"]["pocket_id"] == "D2-P02"
    assert "expected" not in json.dumps(chosen)  # the count is blind: nothing to copy
    assert not cab.sims.call(lambda: cab.sims.models["io_board"].drawers[2].released)
    unlocked = ok(c.post(f"/api/v1/pulls/{pull_id}/count", json={"count": 10}, headers=h))
    assert unlocked["state"] == "unlocking"
    board = cab.sims.models["io_board"]
    assert cab.sims.call(lambda: (board.drawers[2].released, board.pockets[2, 2].latch.released)) == (True, True)
    cab.sims.act("io_board", "open_drawer", drawer=2)
    cab.sims.act("io_board", "lift_lid", drawer=2, pocket=2)
    cab.wait_until(lambda: ok(c.get(f"/api/v1/pulls/{pull_id}", headers=h))["state"] == "open")
    assert ok(c.post(f"/api/v1/pulls/{pull_id}/take", json={"quantity": 1}, headers=h))["state"] == "taken"
    cab.sims.act("io_board", "close_lid", drawer=2, pocket=2)
    cab.sims.act("io_board", "close_drawer", drawer=2)
    cab.wait_until(lambda: ok(c.get(f"/api/v1/pulls/{pull_id}", headers=h))["state"] == "done")
    return pull_id


@pytest.mark.timeout(90)
def test_schedule_ii_pull_and_witnessed_waste_over_http(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        token = cab.login("NURSE1")
        h = bearer(token)
        with c.websocket_connect("/api/v1/events", subprotocols=["adc.bearer", token]) as stream:
            assert stream.receive_json()["type"] == "hello"
            pull_id = pull_one(cab, token)
            waste = ok(
                c.post(
                    "/api/v1/wastes",
                    json={"amount": "0.5", "unit": "mg", "reason": "partial_dose", "pull_id": pull_id},
                    headers=h,
                )
            )
            assert waste["state"] == "awaiting_witness" and waste["witness_step"]["kind"] == "waste"
            witness = "/api/v1/cabinet/session/witness/signature"
            refused(
                c.post(witness, json={"user_id": "NURSE1", "pin": "1111"}, headers=h), 409, "policy.witness_is_actor"
            )
            refused(c.post(witness, json={"user_id": "NURSE2", "pin": "9999"}, headers=h), 401, "auth.bad_credentials")
            signed = ok(c.post(witness, json={"user_id": "NURSE2", "pin": "2222"}, headers=h))
            assert signed["state"] == "recorded" and signed["witness_id"] == "NURSE2"
            seen: list[str] = []
            while "dose.wasted" not in seen:
                event = stream.receive_json()
                if event["type"] == "ledger":
                    assert "patient_id" not in event
                    seen.append(event["event_type"])
        # The stream follows the ledger every 0.2 s, so the login committed just before subscribing may come first.
        pull_events = seen[1:] if seen[:1] == ["session.login"] else seen
        assert pull_events[:1] == ["count.entered"]
        assert {"drawer.opened", "drawer.closed", "dose.removed", "session.login_failed"} <= set(seen)
        entries = cab.entries(start)
        removed = [e for e in entries if e["event_type"] == "dose.removed"]
        assert [(e["actor_id"], e["patient_id"], e["order_id"], e["item_id"], e["pocket_id"], e["quantity_change"],
                 e["is_simulator"], e["details"]["pull_id"]) for e in removed] == [
            ("NURSE1", PATIENT, ORDER, ITEM, "D2-P02", -1, True, pull_id)
        ]  # fmt: skip
        [wasted] = [e for e in entries if e["event_type"] == "dose.wasted"]
        assert (wasted["actor_id"], wasted["witness_id"], wasted["details"]["amount"]) == ("NURSE1", "NURSE2", "0.5")
        failed = [e for e in entries if e["event_type"] == "session.login_failed"]
        assert [e["actor_id"] for e in failed] == ["NURSE2"]  # the witness's wrong PIN counts toward their lockout
        verified = ok(c.get("/api/v1/ledger/verify", headers=bearer(cab.login_after_logout(token, "PHARM1"))))
        assert verified["ok"] is True
        metrics = c.get("/metrics").text
        assert 'adc_engine_commands_total{command="EnterCount",outcome="ok"} 1.0' in metrics
        assert 'adc_engine_commands_total{command="SignWitness",outcome="policy.witness_is_actor"} 1.0' in metrics
    logged = server_log(caplog)
    assert "/api/v1/pulls/{pull_id}/take" in logged  # the access log ran, by route template
    for name in PATIENT_NAMES:
        assert name not in logged


def test_an_internal_error_is_a_problem_with_a_correlation_id_and_no_patient_data_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = "bug while reading " + " ".join(PATIENT_NAMES)  # what an exception's text could carry

    def broken(*_args: Any) -> Any:
        raise RuntimeError(message)

    monkeypatch.setattr(routes_patients, "area_patients", broken)
    caplog.set_level(logging.DEBUG)
    with open_cabinet(tmp_path) as cab:
        token = cab.login("NURSE1")
        answer = cab.client.get(f"/api/v1/patients/{PATIENT}", headers=bearer(token))
        problem = refused(answer, 500, "software.bug")
        assert problem["correlation_id"] in problem["detail"]
        assert PATIENT not in answer.text
    logged = server_log(caplog)
    assert problem["correlation_id"] in logged and "RuntimeError" in logged
    assert "in broken" in logged  # the frames are there, down to the function that raised
    for name in PATIENT_NAMES:
        assert name not in logged


def test_a_token_dies_with_its_session(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        first = cab.login("NURSE1")
        assert ok(c.get("/api/v1/cabinet/session", headers=bearer(first)))["user_id"] == "NURSE1"
        refused(c.post("/api/v1/cabinet/session", json={"user_id": "NURSE2", "pin": "2222"}), 409,
                "session.cabinet_in_use")  # fmt: skip
        cab.clock.advance(timedelta(seconds=61))  # the running loop's next tick logs the idle user off
        cab.wait_until(lambda: c.get("/api/v1/cabinet/session", headers=bearer(first)).status_code == 401)
        refused(c.get("/api/v1/cabinet/session", headers=bearer(first)), 401, "auth.token_invalid")  # forgotten
        second = cab.login("NURSE2")
        refused(c.get("/api/v1/patients", headers=bearer(first)), 401, "auth.token_invalid")
        ok(c.get("/api/v1/patients", headers=bearer(second)))
        ok(c.delete("/api/v1/cabinet/session", headers=bearer(second)))
        refused(c.get("/api/v1/patients", headers=bearer(second)), 401, "auth.token_invalid")
        kinds = [(e["event_type"], e.get("reason_code")) for e in cab.entries()]
        assert ("session.logout", "inactivity") in kinds and ("session.logout", "user") in kinds
        assert ("input.refused", "session_ended") in kinds


@pytest.mark.timeout(60)
def test_the_event_stream_shows_the_fridge_temperature_and_a_tamper(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        token = cab.login("PHARM1")
        with cab.client.websocket_connect("/api/v1/events", subprotocols=["adc.bearer", token]) as stream:
            assert stream.receive_json()["type"] == "hello"
            action = {"device": "io_board", "action": "set_fridge_temperature", "args": {"celsius": 9.5}}
            ok(cab.client.post("/api/v1/devices/simulator/actions", json=action, headers=bearer(token)))
            unknown = {"device": "io_board", "action": "melt"}
            refused(cab.client.post("/api/v1/devices/simulator/actions", json=unknown, headers=bearer(token)), 422,
                    "api.validation")  # fmt: skip
            cab.sims.act("io_board", "stick_sensor", drawer=1, sensor="open", value=True)  # pried open: never unlocked
            cab.sims.act("io_board", "stick_sensor", drawer=1, sensor="closed", value=False)
            seen: dict[str, Any] = {}
            while "temperature" not in seen or "tamper" not in seen:
                event = stream.receive_json()
                if event["type"] == "environment" and event["temperature_c"] == 9.5:
                    seen["temperature"] = event
                if event["type"] == "ledger" and event["event_type"] == "drawer.tamper":
                    seen["tamper"] = event
        assert seen["tamper"]["category"] == "drawer" and seen["tamper"]["pocket_id"] is None
        faults = ok(cab.client.get("/api/v1/devices/faults", headers=bearer(token)))
        assert faults["unaccounted"] == ["D1"]
