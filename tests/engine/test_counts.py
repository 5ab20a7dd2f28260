"""Blind shift-change and cycle counts over the I/O board on Modbus TCP: each pocket is unlocked in turn (drawer,
then lid), no count is taken for a pocket that was never opened, and a mismatch opens a persisted discrepancy."""

from __future__ import annotations

import json
from typing import Any

from controller.domain.clock import FixedClock
from controller.engine.commands import Login
from controller.engine.commands_pharmacy import EnterPocketCount, StartCount, StopCount, UnlockCountPocket
from controller.fsm.compartment import CompartmentState
from controller.fsm.workflows.count import CountKind
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, MORPHINE, chain_ok, entries, last_seq
from tests.engine.test_restock import open_pharmacy, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


def _bodies(db: Database, after: int) -> list[dict[str, Any]]:
    return [{**json.loads(r.body), "seq": r.seq} for r in entries(db, after)]


def test_shift_change_count_opens_the_pocket_blind_with_a_discrepancy(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            start = last_seq(seeded)
            started = await e.execute(StartCount(CountKind.SHIFT_CHANGE))
            assert started.ok, started
            assert started.data["unlocked"] == ["D2", "D2-P01"]  # drawer, then the lid of the controlled pocket
            assert cab.drawer_released(2) and cab.lid_released(2, 1)  # unlocked over Modbus TCP
            shown = {k: v for k, v in started.data["count"].items() if k != "count_id"}
            assert "expected" not in json.dumps(shown) and "9" not in json.dumps(shown)  # blind: 9 is never shown
            unopened = await e.execute(EnterPocketCount("D2-P01", 9))
            assert unopened.code == "workflow.pocket_not_opened", unopened
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)  # not polled: the count reads the sensors itself
            done = await e.execute(EnterPocketCount("D2-P01", 8))
            assert done.ok and done.data["state"] == "done", done
            got = _bodies(seeded, start)
            opened = [b for b in got if b["event_type"] == "drawer.opened"]
            assert [(b["details"]["compartment_id"], b["details"]["purpose"], b["actor_id"]) for b in opened] == [
                ("D2", "count", "NURSE1"),
                ("D2-P01", "count", "NURSE1"),
            ]
            count_id = started.data["count"]["count_id"]
            assert all(b["details"]["workflow_id"] == count_id for b in opened)
            entered = next(b for b in got if b["event_type"] == "count.entered")
            assert entered["details"]["opened_seq"] == opened[1]["seq"]  # the count names the lid's opening
            assert [b["event_type"] for b in got if b["seq"] > opened[1]["seq"]] == [
                "count.entered",
                "discrepancy.raised",
            ]
            with seeded.read() as session:
                open_ = engine_state.open_discrepancies(session, CABINET, pocket_id="D2-P01")
            assert [(d.item_id, d.expected, d.counted, d.raised_by) for d in open_] == [(MORPHINE, 9, 8, "NURSE1")]
            cab.world.close_lid(2, 1)
            cab.world.close_drawer(2)
            await e.poll()
            await e.poll()
            assert e.compartments["D2"].state is CompartmentState.LOCKED
            assert chain_ok(seeded)

    run(scenario())


def test_cycle_count_unlocks_each_pocket_in_order(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            pockets = ("D2-P01", "D1-P02", "D1-P01")  # listed in any order; counted in the cabinet's order
            started = await e.execute(StartCount(CountKind.CYCLE, pockets))
            assert started.ok, started
            assert started.data["count"]["remaining"] == ["D1-P01", "D1-P02", "D2-P01"]
            assert started.data["unlocked"] == ["D1"] and cab.drawer_released(1) and not cab.drawer_released(2)
            cab.world.open_drawer(1)
            first = await e.execute(EnterPocketCount("D1-P01", 5))
            assert first.ok, first
            # the next pocket sits in the same matrix drawer, open for this count: it counts as opened at once
            assert first.data["count"]["next"] == "D1-P02" and first.data["count"]["opened"] == ["D1-P02"]
            assert not cab.drawer_released(2)  # the later drawer stays locked until its turn
            skipped = await e.execute(EnterPocketCount("D2-P01", 9))
            assert skipped.code == "workflow.pocket_not_opened", skipped
            second = await e.execute(EnterPocketCount("D1-P02", 4))
            assert second.ok and second.data["unlocked"] == ["D2", "D2-P01"], second
            cab.world.close_drawer(1)
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)
            last = await e.execute(EnterPocketCount("D2-P01", 9))
            assert last.ok and last.data["state"] == "done", last
            got = _bodies(seeded, start)
            counted = [(b["pocket_id"], b["quantity_actual"]) for b in got if b["event_type"] == "count.entered"]
            assert counted == [("D1-P01", 5), ("D1-P02", 4), ("D2-P01", 9)]
            assert not [b for b in got if b["event_type"] == "discrepancy.raised"]  # every count matched
            # every count follows an opening of its pocket for this count
            for entry in (b for b in got if b["event_type"] == "count.entered"):
                opened_seq = entry["details"]["opened_seq"]
                if entry["pocket_id"] == "D1-P02":
                    assert opened_seq is None  # already open in front of the counter
                    continue
                opening = next(b for b in got if b["seq"] == opened_seq)
                assert opening["event_type"] == "drawer.opened" and opening["seq"] < entry["seq"]
                assert opening["details"]["workflow_id"] == entry["details"]["count_id"]
            assert chain_ok(seeded)

    run(scenario())


def test_stopping_a_count_locks_what_was_never_opened(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            assert (await e.execute(StartCount(CountKind.SHIFT_CHANGE))).ok
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            again = await e.execute(UnlockCountPocket())  # already released for this count: nothing changes
            assert again.ok and cab.drawer_released(2), again
            stopped = await e.execute(StopCount())
            assert stopped.ok and stopped.data["count"]["remaining"] == ["D2-P01"], stopped
            assert not cab.drawer_released(2) and not cab.lid_released(2, 1)
            assert e.compartments["D2"].state is CompartmentState.LOCKED
            assert (await e.execute(UnlockCountPocket())).code == "engine.no_workflow"

    run(scenario())


def test_cycle_count_needs_the_restock_privilege(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            refused = await e.execute(StartCount(CountKind.CYCLE))
            assert refused.code == "policy.privilege_missing", refused
            assert not cab.drawer_released(2)  # refused before anything was unlocked

    run(scenario())
