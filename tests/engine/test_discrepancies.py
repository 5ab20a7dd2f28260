"""Discrepancies end to end: a blind count mismatch raises one (the engine writes the row), it blocks the user's
next pull from that pocket, it is resolved by two people with a reason and reviewed by a pharmacist; and the pool
comes back from the rows after a restart."""

from __future__ import annotations

import pytest

from controller.domain.clock import FixedClock
from controller.engine.commands import Login, Logout, SelectItem, StartPull
from controller.engine.commands_clinical import ListDiscrepancies, ResolveDiscrepancy, ReviewDiscrepancy, SignWitness
from controller.store.database import Database
from tests.engine.rig import entries, open_cabinet
from tests.engine.test_witness import KINDS, body, clinical_engine, ok, pull_morphine, ready, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


@pytest.mark.parametrize("kind", KINDS)
def test_resolve_with_a_witness_then_pharmacist_review(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=7)  # 9 there: a discrepancy
            [open_one] = (await ok(engine, ListDiscrepancies())).data["discrepancies"]
            assert (open_one["state"], open_one["raised_by"], open_one["controlled"]) == ("open", "NURSE1", True)
            await ok(engine, StartPull("MRN1"))
            blocked = await engine.execute(SelectItem(order_id="ORD1"))
            assert blocked.code == "workflow.discrepancy_open"
            assert (await engine.execute(ResolveDiscrepancy(open_one["discrepancy_id"], "guess"))).code == (
                "workflow.reason_required"
            )
            waiting = await ok(engine, ResolveDiscrepancy(open_one["discrepancy_id"], "miscount_current", "recount"))
            assert waiting.data["state"] == "awaiting_witness"
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "resolved"
            resolved = [body(r) for r in entries(seeded) if r.event_type == "discrepancy.resolved"]
            assert [(r["actor_id"], r["witness_id"], r["reason_code"]) for r in resolved] == [
                ("NURSE1", "NURSE2", "miscount_current")
            ]
            assert (await engine.execute(ReviewDiscrepancy(open_one["discrepancy_id"]))).code == (
                "policy.privilege_missing"
            )
            await ok(engine, Logout())
            # restart: the resolved discrepancy (with its resolver and witness) comes back from its row
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine, "PHARM1", "3333")
            reviewed = await ok(engine, ReviewDiscrepancy(open_one["discrepancy_id"], "ok"))
            assert reviewed.data["state"] == "reviewed"
            assert (await ok(engine, ListDiscrepancies())).data["discrepancies"] == []
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            await ok(engine, StartPull("MRN1"))
            assert (await engine.execute(SelectItem(order_id="ORD1"))).ok  # no longer blocked

    run(scenario())


def test_the_reviewer_must_not_be_the_witness(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=1)
            [d] = (await ok(engine, ListDiscrepancies())).data["discrepancies"]
            await ok(engine, ResolveDiscrepancy(d["discrepancy_id"], "undocumented_removal"))
            await ok(engine, SignWitness("PHARM1", pin="3333"))
            await ok(engine, Logout())
            await ok(engine, Login("PHARM1", pin="3333"))
            refused = await engine.execute(ReviewDiscrepancy(d["discrepancy_id"]))
            assert refused.code == "workflow.reviewer_conflict"
            assert (await engine.execute(ReviewDiscrepancy("999"))).code == "engine.unknown_discrepancy"

    run(scenario())
