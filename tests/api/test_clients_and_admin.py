"""Integrators and administrators: ``adc api client add`` prints a secret once; ``/oauth/token`` trades it for a
short-lived JWT with the scopes asked for (never more); a wrong secret is refused and recorded. An administrator
creates and deactivates users and sets the override list, each change a ``configuration.changed`` entry, and the
override list takes effect at once and is read back from the ledger after a restart."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from controller.api.client_tokens import KEY_FILE
from tests.api.rig import CABINET, Cabinet, bearer, open_cabinet
from tests.api.test_pull_flow import ok, refused

TOKEN = "/oauth/token"


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    with open_cabinet(Path(tmp_path_factory.mktemp("clients"))) as cab:
        yield cab


def adc(cab: Cabinet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    env |= {"ADC_DATABASE_URL": cab.database_url, "ADC_ARGON2_TIME_COST": "1", "ADC_ARGON2_MEMORY_KIB": "8"}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_client_credentials_end_to_end(cabinet: Cabinet) -> None:
    made = adc(cabinet, "api", "client", "add", "pharmacy-bi", "--scopes", "ledger:read inventory:read")
    assert made.returncode == 0, made.stderr
    printed = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
    secret = printed["client_secret"]
    assert printed["client_id"] == "pharmacy-bi" and len(secret) >= 40
    assert secret not in (cabinet.settings.data_dir / "adc.db").read_bytes().decode("latin-1")  # only its hash
    unknown_scope = adc(cabinet, "api", "client", "add", "x", "--scopes", "ledger:write")
    assert unknown_scope.returncode != 0 and "unknown scope" in unknown_scope.stderr

    c = cabinet.client
    form = {"grant_type": "client_credentials", "client_id": "pharmacy-bi", "client_secret": secret}
    answer = c.post(TOKEN, data=form | {"scope": "ledger:read"})
    issued = answer.json()
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert (issued["token_type"], issued["scope"], issued["expires_in"]) == ("Bearer", "ledger:read", 900)
    key = bytes.fromhex((cabinet.settings.data_dir / KEY_FILE).read_text().strip())
    claims = jwt.decode(issued["access_token"], key, algorithms=["HS256"], audience=f"adc:{CABINET}")
    assert claims["sub"] == "pharmacy-bi" and claims["iss"] == "open-adc"
    assert 0 < claims["exp"] - time.time() <= 900
    ledger = ok(c.get("/api/v1/ledger?limit=2", headers=bearer(issued["access_token"])))
    assert [e["seq"] for e in ledger["entries"]] == [1, 2] and ledger["next_after_seq"] == 2
    refused(c.get("/api/v1/inventory/pockets", headers=bearer(issued["access_token"])), 403, "auth.scope_missing")

    basic = base64.b64encode(f"pharmacy-bi:{secret}".encode()).decode()
    both = c.post(TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert both.json()["scope"] == "inventory:read ledger:read"  # none asked: all the client holds
    refused(c.post(TOKEN, data=form | {"scope": "admin:read"}), 403, "auth.scope_missing")

    start = cabinet.entries()[-1]["seq"]
    refused(c.post(TOKEN, data=form | {"client_secret": "wrong"}), 401, "auth.client_invalid")
    refused(c.post(TOKEN, data=form | {"client_id": "nobody"}), 401, "auth.client_invalid")
    refused(c.post(TOKEN, data=form | {"grant_type": "password"}), 400, "auth.grant_unsupported")
    refused(c.post(TOKEN, json=form), 415, "api.unsupported_media_type")
    recorded = [e["reason_code"] for e in cabinet.entries(start) if e["event_type"] == "input.refused"]
    assert recorded == ["client_invalid", "client_invalid"]


def test_admin_users_and_the_override_list(cabinet: Cabinet) -> None:
    c = cabinet.client
    admin = bearer(cabinet.login("ADMIN1"))
    start = cabinet.entries()[-1]["seq"]
    new = {"user_id": "NURSE9", "display_name": "Kim Lee, RN", "roles": ["nurse"], "pin": "9876"}
    created = c.post("/api/v1/admin/users", json=new, headers=admin)
    assert created.status_code == 201, created.text
    refused(c.post("/api/v1/admin/users", json=new, headers=admin), 409, "admin.user_exists")
    refused(c.post("/api/v1/admin/users", json=new | {"pin": "12"}, headers=admin), 422, "api.validation")
    refused(c.post("/api/v1/admin/users", json=new | {"roles": ["superuser"]}, headers=admin), 422, "api.validation")
    listed = c.get("/api/v1/admin/users", headers=admin)
    assert listed.status_code == 200
    users = {u["user_id"]: u for u in listed.json()["data"]}
    assert users["NURSE9"]["roles"] == ["nurse"] and users["NURSE9"]["active"]
    ok(c.put("/api/v1/admin/override-list", json={"items": ["ONDANSETRON-2MG-ML-INJ"]}, headers=admin))
    refused(c.put("/api/v1/admin/override-list", json={"items": ["NO-SUCH-ITEM"]}, headers=admin), 404,
            "inventory.unknown_item")  # fmt: skip
    assert ok(c.get("/api/v1/admin/override-list", headers=admin))["items"] == ["ONDANSETRON-2MG-ML-INJ"]
    cabinet.logout(admin["Authorization"].split()[1])

    nurse = bearer(cabinet.login("NURSE9", "9876"))  # the new user logs in
    pull_id = ok(c.post("/api/v1/pulls", json={"patient_id": "MRN100005"}, headers=nurse))["pull"]["pull_id"]
    override = {"item_id": "ONDANSETRON-2MG-ML-INJ", "override_reason": "stat_order_pending_verification"}
    chosen = ok(c.post(f"/api/v1/pulls/{pull_id}/item", json=override, headers=nurse))
    assert chosen["pull"]["is_override"] is True  # allowed because the list now holds it
    ok(c.post(f"/api/v1/pulls/{pull_id}/cancel", headers=nurse))
    cabinet.logout(nurse["Authorization"].split()[1])

    admin = bearer(cabinet.login("ADMIN1"))
    assert ok(c.patch("/api/v1/admin/users/NURSE9", json={"active": False}, headers=admin))["active"] is False
    refused(c.patch("/api/v1/admin/users/ADMIN1", json={"active": False}, headers=admin), 403,
            "policy.privilege_missing")  # fmt: skip
    refused(c.patch("/api/v1/admin/users/NOBODY", json={"active": False}, headers=admin), 404, "admin.unknown_user")
    cabinet.logout(admin["Authorization"].split()[1])
    refused(c.post("/api/v1/cabinet/session", json={"user_id": "NURSE9", "pin": "9876"}), 403, "auth.user_inactive")

    changes = [(e["actor_id"], e["details"]["kind"]) for e in cabinet.entries(start)
               if e["event_type"] == "configuration.changed"]  # fmt: skip
    assert changes == [("ADMIN1", "user.created"), ("ADMIN1", "rules"), ("ADMIN1", "user.deactivated")]
    [rules] = [e for e in cabinet.entries(start) if e["details"].get("kind") == "rules"]
    assert json.loads(rules["details"]["document"])["removal"]["override_items"] == ["ONDANSETRON-2MG-ML-INJ"]
    assert rules["note"] == "override list replaced" and rules["details"]["changes"][0]["key"] == "override_items"
