"""Discrepancies end to end: a blind count mismatch raises one (the engine writes the row), it blocks the user's
next pull from that pocket, it is resolved by two people with a reason and reviewed by a pharmacist; the pool comes
back from the rows after a restart, and so does a resolution waiting for its witness. An undocumented access is
resolved only once its pocket has been counted, and for a controlled item only with a witness."""

from __future__ import annotations

from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.domain.policies import Policy, WitnessedAction
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    BeginWitness,
    CancelPull,
    EnterCount,
    EnterPocketCount,
    ListDiscrepancies,
    ListPendingWork,
    Login,
    Logout,
    ResolveDiscrepancy,
    ReviewDiscrepancy,
    SelectItem,
    SignWitness,
    StartCount,
    StartPull,
)
from controller.engine.commands.clinical import WitnessFor
from controller.fsm.workflows.count import CountKind
from controller.store.database import Database
from tests.engine.rig import Cabinet, chain_ok, entries, open_cabinet
from tests.engine.test_witness import KINDS, asked, body, clinical_engine, ok, pull_morphine, ready, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]
# Only what the machine itself demands is witnessed: a resolution in general is not, an undocumented access of a
# controlled item still is.
UNWITNESSED_RESOLUTIONS = Policy(witnessed_actions=frozenset({WitnessedAction.CONTROLLED_WASTE}))


def listed(engine: CabinetEngine) -> list[Any]:
    return list(asked(engine, ListDiscrepancies()).data["discrepancies"])


@pytest.mark.parametrize("kind", KINDS)
def test_resolve_with_a_witness_then_pharmacist_review(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=7)  # 9 there: a discrepancy
            [open_one] = listed(engine)
            assert (open_one["state"], open_one["raised_by"], open_one["controlled"]) == ("open", "NURSE1", True)
            assert open_one["kind"] == "count_mismatch" and open_one["count_required"] is False
            blocked_pull = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            blocked = await engine.execute(SelectItem(blocked_pull, order_id="ORD1"))
            assert blocked.code == "workflow.discrepancy_open"
            assert (await engine.execute(ResolveDiscrepancy(open_one["discrepancy_id"], "guess"))).code == (
                "workflow.reason_required"
            )
            waiting = await ok(engine, ResolveDiscrepancy(open_one["discrepancy_id"], "miscount_current", "recount"))
            assert waiting.data["state"] == "awaiting_witness"
            assert waiting.data["witness_step"]["action"] == "discrepancy_resolution"
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
            assert listed(engine) == []
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok  # no longer blocked

    run(scenario())


def test_the_reviewer_must_not_be_the_witness(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=1)
            [d] = listed(engine)
            await ok(engine, ResolveDiscrepancy(d["discrepancy_id"], "undocumented_removal"))
            await ok(engine, SignWitness("PHARM1", pin="3333"))
            await ok(engine, Logout())
            await ok(engine, Login("PHARM1", pin="3333"))
            refused = await engine.execute(ReviewDiscrepancy(d["discrepancy_id"]))
            assert refused.code == "workflow.reviewer_conflict"
            assert (await engine.execute(ReviewDiscrepancy("999"))).code == "engine.unknown_discrepancy"

    run(scenario())


def test_a_resolution_waiting_for_its_witness_survives_a_restart(seeded: Database, clock: FixedClock) -> None:
    """The controller stops while a resolution waits for its witness: after the restart it is on the resolver's
    pending work (not anyone else's), the discrepancy still open; the resolver begins the step again and the
    witness signs the resolution as entered (reason and note)."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=7)
            [d] = listed(engine)
            waiting = await ok(engine, ResolveDiscrepancy(d["discrepancy_id"], "miscount_current", "recounted"))
            assert waiting.data["state"] == "awaiting_witness"
            restarted = clinical_engine(seeded, cab.board, clock)  # killed; nobody signed
            await ready(restarted)
            [again] = listed(restarted)
            assert again["state"] == "open" and again["awaiting_witness"] is True
            [step] = asked(restarted, ListPendingWork("NURSE1")).data["witness_steps"]
            assert (step["kind"], step["target_id"], step["action"]) == (
                "discrepancy", d["discrepancy_id"], "discrepancy_resolution",
            )  # fmt: skip
            assert asked(restarted, ListPendingWork("NURSE2")).data["witness_steps"] == ()
            await ok(restarted, BeginWitness(WitnessFor.DISCREPANCY, d["discrepancy_id"]))
            signed = await ok(restarted, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "resolved"
            [resolved] = [body(r) for r in entries(seeded) if r.event_type == "discrepancy.resolved"]
            assert (resolved["actor_id"], resolved["witness_id"], resolved["reason_code"], resolved["note"]) == (
                "NURSE1", "NURSE2", "miscount_current", "recounted",
            )  # fmt: skip
            assert asked(restarted, ListPendingWork("NURSE1")).data["witness_steps"] == ()
            [after] = listed(restarted)
            assert after["state"] == "resolved" and after["awaiting_witness"] is False
            assert chain_ok(seeded)

    run(scenario())


def test_a_resolution_waiting_for_its_witness_survives_a_logoff(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=7)
            [d] = listed(engine)
            await ok(engine, ResolveDiscrepancy(d["discrepancy_id"], "miscount_current"))
            await ok(engine, Logout())
            await ok(engine, Login("NURSE2", pin="2222"))
            # only the resolver may take up the waiting resolution
            refused = await engine.execute(BeginWitness(WitnessFor.DISCREPANCY, d["discrepancy_id"]))
            assert refused.code == "engine.no_workflow"
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            await ok(engine, BeginWitness(WitnessFor.DISCREPANCY, d["discrepancy_id"]))
            assert (await ok(engine, SignWitness("NURSE2", pin="2222"))).data["state"] == "resolved"

    run(scenario())


# --- an undocumented access -----------------------------------------------------------------------------------------


async def opened_and_left(engine: CabinetEngine, cab: Cabinet, order_id: str) -> str:
    """The logged-in user opens the pocket of ``order_id``'s item and logs out without saying what was taken:
    an undocumented access; its discrepancy id."""
    pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
    chosen = await ok(engine, SelectItem(pull_id, order_id=order_id))
    if chosen.data["state"] == "blind_count":
        await ok(engine, EnterCount(pull_id, 9))
    drawer = 2 if order_id == "ORD1" else 1
    cab.world.open_drawer(drawer)
    await engine.poll()
    if drawer == 2:
        cab.world.lift_lid(2, 1)
        await engine.poll()
        cab.world.close_lid(2, 1)
    cab.world.close_drawer(drawer)
    await engine.poll()
    await ok(engine, Logout())
    [raised] = [d for d in listed(engine) if d["kind"] == "undocumented_access"]
    assert raised["workflow_id"] == pull_id and raised["count_required"] is True
    return str(raised["discrepancy_id"])


async def count_pocket(engine: CabinetEngine, cab: Cabinet, pocket_id: str, counted: int) -> None:
    """The logged-in user counts ``pocket_id`` (blind) through its opened drawer (and lid)."""
    count_id = (await ok(engine, StartCount(CountKind.CYCLE, (pocket_id,)))).unwrap().count_id
    drawer, lid = {"D1-P01": (1, None), "D2-P01": (2, 1)}[pocket_id]
    cab.world.open_drawer(drawer)
    await engine.poll()
    if lid is not None:
        cab.world.lift_lid(drawer, lid)
        await engine.poll()
    await ok(engine, EnterPocketCount(count_id, pocket_id, counted))
    if lid is not None:
        cab.world.close_lid(drawer, lid)
        await engine.poll()
    cab.world.close_drawer(drawer)
    await engine.poll()


def test_an_undocumented_access_of_a_controlled_item_needs_a_count_then_a_witness(
    seeded: Database, clock: FixedClock
) -> None:
    """Even when the policy witnesses no resolution, an undocumented access of morphine is closed by two people,
    and only once its pocket has been counted."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, policy=UNWITNESSED_RESOLUTIONS)
            await ready(engine)
            discrepancy_id = await opened_and_left(engine, cab, "ORD1")
            await ok(engine, Login("PHARM1", pin="3333"))
            refused = await engine.execute(ResolveDiscrepancy(discrepancy_id, "undocumented_removal"))
            assert refused.code == "workflow.count_required", refused
            await count_pocket(engine, cab, "D2-P01", 9)
            waiting = await ok(engine, ResolveDiscrepancy(discrepancy_id, "miscount_current", "nothing missing"))
            assert waiting.data["state"] == "awaiting_witness"
            assert (await engine.execute(SignWitness("PHARM1", pin="3333"))).code == "policy.witness_is_actor"
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "resolved"
            [resolved] = [body(r) for r in entries(seeded) if r.event_type == "discrepancy.resolved"]
            assert (resolved["actor_id"], resolved["witness_id"]) == ("PHARM1", "NURSE2")
            assert resolved["details"]["counted_seq"] is not None
            assert chain_ok(seeded)

    run(scenario())


def test_an_undocumented_access_of_a_non_controlled_item_needs_a_count_but_no_witness(
    seeded: Database, clock: FixedClock
) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, policy=UNWITNESSED_RESOLUTIONS)
            await ready(engine)
            discrepancy_id = await opened_and_left(engine, cab, "ORD2")  # heparin, matrix drawer 1
            await ok(engine, Login("PHARM1", pin="3333"))
            refused = await engine.execute(ResolveDiscrepancy(discrepancy_id, "miscount_current"))
            assert refused.code == "workflow.count_required", refused
            await count_pocket(engine, cab, "D1-P01", 5)
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            early = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            still = await engine.execute(SelectItem(early, order_id="ORD2"))  # counted, not resolved: still blocked
            assert still.code == "workflow.undocumented_access", still
            await ok(engine, CancelPull(early))
            await ok(engine, Logout())
            await ok(engine, Login("PHARM1", pin="3333"))
            resolved = await ok(engine, ResolveDiscrepancy(discrepancy_id, "miscount_current"))
            assert resolved.data["state"] == "resolved" and resolved.data["discrepancy"]["witness_id"] is None
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(pull_id, order_id="ORD2"))).ok  # the pocket is no longer blocked

    run(scenario())


def test_resolving_again_while_the_step_is_open_keeps_the_waiting_resolution(
    seeded: Database, clock: FixedClock
) -> None:
    """A second resolve of the same discrepancy while its witness step is open is refused (one step at a time) and
    leaves the first as entered: the witness then signs that one."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=7)
            [d] = listed(engine)
            await ok(engine, ResolveDiscrepancy(d["discrepancy_id"], "miscount_current", "first"))
            again = await engine.execute(ResolveDiscrepancy(d["discrepancy_id"], "undocumented_removal", "second"))
            assert again.code == "fsm.event_not_allowed", again
            signed = await engine.execute(SignWitness("NURSE2", pin="2222"))
            assert signed.ok and signed.data["state"] == "resolved", signed
            [resolved] = [body(r) for r in entries(seeded) if r.event_type == "discrepancy.resolved"]
            assert (resolved["reason_code"], resolved["note"]) == ("miscount_current", "first")
            restarted = clinical_engine(seeded, cab.board, clock)  # nothing of it is left waiting
            await ready(restarted)
            assert asked(restarted, ListPendingWork("NURSE1")).data["witness_steps"] == ()

    run(scenario())
