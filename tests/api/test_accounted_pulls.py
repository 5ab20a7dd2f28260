"""Every access to a pocket is accounted for, tried over HTTP as a nurse would, with the drawer and lid on the I/O
board simulator: a second pull does not orphan the first; a cancelled pull relocks its pocket and the cancel is in
the ledger; a pull opened and closed without saying what was taken becomes an undocumented-access discrepancy at
logout that blocks the pocket; zero is a valid take. Each of these let a controlled dose leave with no record
before the engine was rebuilt around named targets and live grants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.rig import Cabinet, bearer, open_cabinet
from tests.api.test_pull_flow import ok, refused

PATIENT = "MRN100001"
HYDROMORPHONE = ("ORD9001", "D2-P02", 2, 2)  # order, pocket, drawer, lid: schedule II, blind count, lidded drawer
ONDANSETRON = ("ORD9002", "D1-P02", 1, None)  # not controlled, matrix drawer D1


def start_pull(cab: Cabinet, h: dict[str, str], order: str, count: int | None = 10) -> str:
    """Start a pull for ``order`` and bring it to ``unlocking`` (the blind count first when one is asked)."""
    c = cab.client
    pull_id: str = ok(c.post("/api/v1/pulls", json={"patient_id": PATIENT}, headers=h))["pull"]["pull_id"]
    chosen = ok(c.post(f"/api/v1/pulls/{pull_id}/item", json={"order_id": order}, headers=h))
    if chosen["state"] == "blind_count":
        assert count is not None
        chosen = ok(c.post(f"/api/v1/pulls/{pull_id}/count", json={"count": count}, headers=h))
    assert chosen["state"] == "unlocking", chosen
    return pull_id


def state_of(cab: Cabinet, h: dict[str, str], pull_id: str) -> str:
    state: str = ok(cab.client.get(f"/api/v1/pulls/{pull_id}", headers=h))["state"]
    return state


def released(cab: Cabinet, drawer: int, lid: int | None) -> tuple[bool, bool | None]:
    board = cab.sims.models["io_board"]
    return cab.sims.call(
        lambda: (board.drawers[drawer].released, board.pockets[drawer, lid].latch.released if lid else None)
    )


def open_pocket(cab: Cabinet, h: dict[str, str], pull_id: str, drawer: int, lid: int | None) -> None:
    cab.sims.act("io_board", "open_drawer", drawer=drawer)
    if lid is not None:
        cab.sims.act("io_board", "lift_lid", drawer=drawer, pocket=lid)
    cab.wait_until(lambda: state_of(cab, h, pull_id) == "open")


def close_pocket(cab: Cabinet, drawer: int, lid: int | None) -> None:
    if lid is not None:
        cab.sims.act("io_board", "close_lid", drawer=drawer, pocket=lid)
    cab.sims.act("io_board", "close_drawer", drawer=drawer)


def of_pull(entries: list[dict[str, Any]], event_type: str, pull_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["event_type"] == event_type and (e.get("details") or {}).get("pull_id") == pull_id]


@pytest.mark.timeout(120)
def test_a_second_pull_while_the_first_drawer_is_open_leaves_the_first_whole(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        h = bearer(cab.login("NURSE1"))
        order, _pocket, drawer, lid = HYDROMORPHONE
        first = start_pull(cab, h, order)
        open_pocket(cab, h, first, drawer, lid)
        # The same nurse, the same patient, a second dose while the first drawer is still open.
        second = start_pull(cab, h, ONDANSETRON[0])
        assert second != first and state_of(cab, h, first) == "open"
        assert ok(c.post(f"/api/v1/pulls/{first}/take", json={"quantity": 1}, headers=h))["state"] == "taken"
        close_pocket(cab, drawer, lid)
        cab.wait_until(lambda: state_of(cab, h, first) == "done")
        open_pocket(cab, h, second, ONDANSETRON[2], None)
        assert ok(c.post(f"/api/v1/pulls/{second}/take", json={"quantity": 2}, headers=h))["state"] == "taken"
        close_pocket(cab, ONDANSETRON[2], None)
        cab.wait_until(lambda: state_of(cab, h, second) == "done")
        entries = cab.entries(start)
        assert [(e["pocket_id"], e["quantity_change"]) for e in of_pull(entries, "dose.removed", first)] == [
            ("D2-P02", -1)
        ]
        assert [(e["pocket_id"], e["quantity_change"]) for e in of_pull(entries, "dose.removed", second)] == [
            ("D1-P02", -2)
        ]
        assert not [e for e in entries if e["event_type"] in ("drawer.tamper", "discrepancy.raised")]


@pytest.mark.timeout(120)
def test_a_pull_cancelled_after_the_unlock_relocks_and_is_recorded(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        h = bearer(cab.login("NURSE1"))
        order, _pocket, drawer, lid = HYDROMORPHONE
        pull_id = start_pull(cab, h, order)
        assert released(cab, drawer, lid) == (True, True)
        cancelled = ok(c.post(f"/api/v1/pulls/{pull_id}/cancel", headers=h))
        assert cancelled["state"] == "cancelled", cancelled
        # The drawer and the lid lock again on the wire at once, not when their hold runs out.
        assert released(cab, drawer, lid) == (False, False)
        with pytest.raises(AssertionError, match="locked"):
            cab.sims.act("io_board", "open_drawer", drawer=drawer)
        [entry] = of_pull(cab.entries(start), "workflow.cancelled", pull_id)
        assert (entry["actor_id"], entry["pocket_id"], entry["details"]["state_before"]) == (
            "NURSE1",
            "D2-P02",
            "unlocking",
        )
        refused(c.post(f"/api/v1/pulls/{pull_id}/take", json={"quantity": 1}, headers=h), 409, "engine.no_workflow")


@pytest.mark.timeout(120)
def test_opened_closed_and_logged_out_without_a_take_is_an_undocumented_access(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        token = cab.login("NURSE1")
        h = bearer(token)
        order, pocket, drawer, lid = HYDROMORPHONE
        pull_id = start_pull(cab, h, order)
        open_pocket(cab, h, pull_id, drawer, lid)
        close_pocket(cab, drawer, lid)
        cab.wait_until(lambda: state_of(cab, h, pull_id) == "closed_unaccounted")
        ok(c.delete("/api/v1/cabinet/session", headers=h))
        entries = cab.entries(start)
        [raised] = [e for e in entries if e["event_type"] == "discrepancy.raised"]
        assert (raised["reason_code"], raised["pocket_id"], raised["actor_id"]) == ("undocumented_access", pocket,
                                                                                   "NURSE1")  # fmt: skip
        assert raised["details"]["pull_id"] == pull_id
        # The pocket stays blocked until someone counts it.
        token = cab.login("NURSE1")
        h = bearer(token)
        again: str = ok(c.post("/api/v1/pulls", json={"patient_id": PATIENT}, headers=h))["pull"]["pull_id"]
        refused(c.post(f"/api/v1/pulls/{again}/item", json={"order_id": order}, headers=h), 409,
                "workflow.undocumented_access")  # fmt: skip
        pharmacist = bearer(cab.login_after_logout(token, "PHARM1"))
        listed = ok(c.get("/api/v1/discrepancies", headers=pharmacist))
        [open_one] = [d for d in listed["discrepancies"] if d["kind"] == "undocumented_access"]
        assert (open_one["pocket_id"], open_one["workflow_id"], open_one["count_required"]) == (pocket, pull_id, True)


@pytest.mark.timeout(120)
def test_zero_is_a_valid_take(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        start = cab.entries()[-1]["seq"]
        h = bearer(cab.login("NURSE1"))
        order, _pocket, drawer, lid = HYDROMORPHONE
        pull_id = start_pull(cab, h, order)
        open_pocket(cab, h, pull_id, drawer, lid)
        refused(c.post(f"/api/v1/pulls/{pull_id}/take", json={"quantity": -1}, headers=h), 422, "api.validation")
        assert ok(c.post(f"/api/v1/pulls/{pull_id}/take", json={"quantity": 0}, headers=h))["state"] == "taken"
        close_pocket(cab, drawer, lid)
        cab.wait_until(lambda: state_of(cab, h, pull_id) == "done")
        ok(c.delete("/api/v1/cabinet/session", headers=h))
        entries = cab.entries(start)
        assert not [e for e in entries if e["event_type"] == "discrepancy.raised"]
        removed = of_pull(entries, "dose.removed", pull_id)
        assert sum(e["quantity_change"] or 0 for e in removed) == 0
        assert removed, "a take of zero is recorded too: the nurse said nothing was taken"
