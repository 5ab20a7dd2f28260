"""Blind shift-change and cycle counts of controlled pockets; a mismatch opens a persisted discrepancy."""

from __future__ import annotations

import json

from controller.domain.clock import FixedClock
from controller.engine.commands import Login
from controller.engine.commands_pharmacy import EnterPocketCount, StartCount
from controller.fsm.workflows.count import CountKind
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, MORPHINE, entries, last_seq
from tests.engine.test_restock import open_pharmacy, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


def test_shift_change_count_blind_with_a_discrepancy(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            start = last_seq(seeded)
            started = await e.execute(StartCount(CountKind.SHIFT_CHANGE))
            assert started.ok, started
            shown = {k: v for k, v in started.data["count"].items() if k != "count_id"}
            assert "expected" not in json.dumps(shown) and "9" not in json.dumps(shown)  # blind: 9 is never shown
            done = await e.execute(EnterPocketCount("D2-P01", 8))
            assert done.ok and done.data["state"] == "done", done
            kinds = [r.event_type for r in entries(seeded, start)]
            assert kinds == ["count.entered", "discrepancy.raised"]
            with seeded.read() as session:
                open_ = engine_state.open_discrepancies(session, CABINET, pocket_id="D2-P01")
            assert [(d.item_id, d.expected, d.counted, d.raised_by) for d in open_] == [(MORPHINE, 9, 8, "NURSE1")]

    run(scenario())


def test_cycle_count_needs_the_restock_privilege(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            refused = await e.execute(StartCount(CountKind.CYCLE))
            assert refused.code == "policy.privilege_missing", refused

    run(scenario())
