"""Pharmacy work through HTTP: a technician restocks a pocket by scan (the drawer unlocks over Modbus, a blind
count-back, GS1 DataMatrix packages read by the scanner simulator over TCP, a wrong strength refused), and a
pharmacist finds and resolves a discrepancy a nurse's miscount raised, with a witness, then reviews it (refused to
the resolver)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.domain.ndc import Ndc, gtin14_from_ndc
from tests.api.rig import Cabinet, bearer, open_cabinet
from tests.api.test_pull_flow import ok, refused

POCKET, ITEM, NDC = "D1-P02", "ONDANSETRON-2MG-ML-INJ", "70860-776-02"


def gs1(ndc: str, lot: str, expiry: str, serial: str) -> str:
    return f"01{gtin14_from_ndc(Ndc.parse(ndc), 0)}17{expiry}10{lot}\x1d21{serial}"


def on_hand(cab: Cabinet, headers: dict[str, str], pocket: str) -> int:
    answer = cab.client.get("/api/v1/inventory/pockets", headers=headers)
    assert answer.status_code == 200
    quantity: int = next(p["quantity"] for p in answer.json()["data"] if p["pocket_id"] == pocket)
    return quantity


@pytest.mark.timeout(60)
def test_a_technician_restocks_a_pocket_by_scan(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        tech = bearer(cab.login("TECH1"))
        before = on_hand(cab, tech, POCKET)
        started = ok(c.post("/api/v1/restocks", json={"pocket_id": POCKET, "quantity": 2}, headers=tech))
        assert started["restock"]["pocket_id"] == POCKET and "expected" not in str(started)
        restock = f"/api/v1/restocks/{started['restock']['restock_id']}"
        assert cab.sims.call(lambda: cab.sims.models["io_board"].drawers[1].released)
        cab.sims.act("io_board", "open_drawer", drawer=1)
        cab.wait_until(lambda: cab.entries()[-1]["event_type"] == "drawer.opened")
        ok(c.post(f"{restock}/count-back", json={"count": before}, headers=tech))
        cab.sims.act("scanner", "present", barcode_text=gs1(NDC, "ON77", "280131", "S1"), symbology="]d2")
        scanned = ok(c.post(f"{restock}/scan", json={"timeout_s": 3}, headers=tech))
        assert scanned["scan"]["verdict"] == "match" and scanned["scan"]["lot"] == "ON77"
        cab.sims.act("scanner", "present", barcode_text=gs1("0409-1316-32", "HX1", "281231", "W1"), symbology="]d2")
        refused(c.post(f"{restock}/scan", headers=tech), 409, "inventory.item_mismatch")
        cab.sims.act("scanner", "present", barcode_text=gs1(NDC, "ON77", "280131", "S2"), symbology="]d2")
        ok(c.post(f"{restock}/scan", headers=tech))
        ok(c.post(f"{restock}/finish", headers=tech))
        cab.sims.act("io_board", "close_drawer", drawer=1)
        assert on_hand(cab, tech, POCKET) == before + 2
        restocked = [e for e in cab.entries() if e["event_type"] == "stock.restocked"]
        assert [(e["actor_id"], e["item_id"], e["lot_number"], e["quantity_change"]) for e in restocked] == [
            ("TECH1", ITEM, "ON77", 2)
        ]


def test_a_pharmacist_resolves_and_another_reviews_a_discrepancy(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        nurse = bearer(cab.login("NURSE1"))
        pull_id = ok(c.post("/api/v1/pulls", json={"patient_id": "MRN100003"}, headers=nurse))["pull"]["pull_id"]
        chosen = ok(c.post(f"/api/v1/pulls/{pull_id}/item", json={"order_id": "ORD9007"}, headers=nurse))
        assert chosen["state"] == "blind_count"
        counted: dict[str, Any] = ok(c.post(f"/api/v1/pulls/{pull_id}/count", json={"count": 99}, headers=nurse))
        assert "discrepancy.raised" in [e["event_type"] for e in cab.entries()[-3:]], counted
        ok(c.post(f"/api/v1/pulls/{pull_id}/cancel", headers=nurse))
        pharmacist = bearer(cab.login_after_logout(nurse["Authorization"].split()[1], "PHARM1"))
        [open_one] = ok(c.get("/api/v1/discrepancies", headers=pharmacist))["discrepancies"]
        target = open_one["discrepancy_id"]
        resolution = {"reason": "miscount_current", "note": "recounted: 24"}
        waiting = ok(c.post(f"/api/v1/discrepancies/{target}/resolution", json=resolution, headers=pharmacist))
        assert waiting["state"] == "awaiting_witness" and waiting["witness_step"]["kind"] == "discrepancy"
        signature = {"user_id": "NURSE2", "pin": "2222"}
        signed = ok(c.post("/api/v1/cabinet/session/witness/signature", json=signature, headers=pharmacist))
        assert (signed["state"], signed["discrepancy"]["resolver_id"], signed["witness_id"]) == (
            "resolved", "PHARM1", "NURSE2",
        )  # fmt: skip
        refused(c.post(f"/api/v1/discrepancies/{target}/review", headers=pharmacist), 409, "workflow.reviewer_conflict")
        kinds = [e["event_type"] for e in cab.entries()]
        assert "discrepancy.resolved" in kinds
