"""Two administrator jobs over HTTP: clearing a user's lockout (with a reason, one ledger entry, the user may log in
at once) and reading and changing the rules in force (validated as the policy file is, every change a
``configuration.changed`` entry with its old and new value, kept across a restart)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from controller.api.app import create_app
from controller.api.settings import ApiSettings
from controller.domain.clock import FixedClock
from tests.api.rig import START, Cabinet, bearer, cabinet_settings, open_cabinet, running_simulators, seed_demo
from tests.api.test_pull_flow import ok, refused


@pytest.mark.timeout(90)
def test_an_administrator_clears_a_lockout_with_a_reason(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        for _ in range(5):  # policy.toml: max_failed_logins = 5
            refused(c.post("/api/v1/cabinet/session", json={"user_id": "NURSE2", "pin": "0000"}), 401,
                    "auth.bad_credentials")  # fmt: skip
        refused(c.post("/api/v1/cabinet/session", json={"user_id": "NURSE2", "pin": "2222"}), 423,
                "session.locked_out")  # fmt: skip
        nurse = cab.login("NURSE1")
        route = "/api/v1/admin/users/NURSE2/lockout/clear"
        refused(c.post(route, json={"reason": "I know her"}, headers=bearer(nurse)), 403, "policy.privilege_missing")
        admin = bearer(cab.login_after_logout(nurse, "ADMIN1"))
        refused(c.post(route, json={"reason": ""}, headers=admin), 422, "api.validation")
        refused(c.post("/api/v1/admin/users/NOBODY/lockout/clear", json={"reason": "typo"}, headers=admin), 404,
                "admin.unknown_user")  # fmt: skip
        ok(c.post(route, json={"reason": "identity confirmed by the charge nurse"}, headers=admin))
        ok(c.delete("/api/v1/cabinet/session", headers=admin))
        cab.login("NURSE2")  # at once, not after the 15 minutes
        [cleared] = [e for e in cab.entries(start) if e["event_type"] == "session.lockout_cleared"]
        assert (cleared["actor_id"], cleared["note"]) == (
            "ADMIN1",
            "identity confirmed by the charge nurse",
        )
        assert cleared["details"]["cleared_user_id"] == "NURSE2"


@pytest.mark.timeout(120)
def test_the_rules_in_force_are_read_and_changed_with_a_reason_and_survive_a_restart(tmp_path: Path) -> None:
    clock = FixedClock(START)
    database_url = f"sqlite:///{tmp_path / 'adc.db'}"
    seed_demo(database_url, clock)
    with running_simulators() as sims:
        settings = cabinet_settings(tmp_path, sims)

        @contextmanager
        def cabinet() -> Iterator[Cabinet]:
            app = create_app(settings, ApiSettings(sim_control=sims.control_url), clock=clock)
            with TestClient(app, raise_server_exceptions=False) as client:
                cab = Cabinet(client, sims, clock, settings, database_url)
                cab.wait_until(lambda: client.get("/ready").status_code == 200, timeout=15)
                yield cab

        with cabinet() as cab:
            c = cab.client
            start = cab.entries()[-1]["seq"]
            admin = bearer(cab.login("ADMIN1"))
            before = ok(c.get("/api/v1/admin/policies", headers=admin))
            assert before["document"]["session"]["inactivity_logout_s"] == 60
            assert before["document"]["refrigerator"]["excursion_minutes"] == 30
            change = {"changes": {"session": {"inactivity_logout_s": 90}}, "reason": "unit request, P&T 2026-11"}
            unknown = {"changes": {"session": {"inactivity_logout": 90}}, "reason": "typo"}
            problem = refused(
                c.patch("/api/v1/admin/policies", json=unknown, headers=admin), 422, "admin.invalid_rules"
            )
            assert "inactivity_logout" in problem["detail"]
            bad = {"changes": {"session": {"inactivity_logout_s": "soon"}}, "reason": "bad value"}
            refused(c.patch("/api/v1/admin/policies", json=bad, headers=admin), 422, "admin.invalid_rules")
            no_reason = {**change, "reason": ""}
            refused(c.patch("/api/v1/admin/policies", json=no_reason, headers=admin), 422, "api.validation")
            changed = ok(c.patch("/api/v1/admin/policies", json=change, headers=admin))
            assert changed["values"]["changes"] == [
                {"section": "session", "key": "inactivity_logout_s", "from": 60, "to": 90}
            ]
            after = ok(c.get("/api/v1/admin/policies", headers=admin))
            assert after["document"]["session"]["inactivity_logout_s"] == 90 and after["hash"] != before["hash"]
            entries = [e for e in cab.entries(start) if e["event_type"] == "configuration.changed"]
            assert [(e["actor_id"], e["details"]["hash"]) for e in entries] == [("ADMIN1", after["hash"])]
            assert entries[0]["note"] == "unit request, P&T 2026-11"
        # The next start on the same store keeps the changed rules, not the file's default.
        with cabinet() as cab:
            admin = bearer(cab.login("ADMIN1"))
            kept = ok(cab.client.get("/api/v1/admin/policies", headers=admin))
            assert kept["hash"] == after["hash"] and kept["document"]["session"]["inactivity_logout_s"] == 90
