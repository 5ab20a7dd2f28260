"""Waste rules at the engine: deferring to the pending list with its due time, refusals (unit, owner, nothing
left, neither or both of pull and pending waste named), a non-controlled waste recorded without a witness, a late
waste recorded after escalation, and a waste waiting for its witness when the controller restarts coming back on
the user's pending-waste list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from controller.domain.clock import FixedClock
from controller.engine.commands import (
    DeferWaste,
    ListPendingWastes,
    ListPendingWork,
    Login,
    Logout,
    ReturnDose,
    SelectItem,
    SignWitness,
    StartPull,
    Take,
    Tick,
    WasteDose,
)
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, chain_ok, entries, open_cabinet, stock
from tests.engine.test_witness import (
    BIN,
    asked,
    body,
    clinical_engine,
    ok,
    pull_morphine,
    ready,
    seeded,
    session_state,
)
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


def test_deferred_waste_refusals_and_a_late_record(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            nothing = await engine.execute(WasteDose(1, "mg", "partial_dose", pull_id="P-none"))
            assert nothing.code == "engine.no_removal"
            assert (await engine.execute(WasteDose(1, "mg", "partial_dose"))).code == "engine.no_workflow"
            pull_id = await pull_morphine(engine, cab, quantity=2)
            both = await engine.execute(WasteDose(1, "mg", "partial_dose", pull_id=pull_id, waste_id="W1"))
            assert both.code == "engine.no_workflow"
            mismatch = await engine.execute(WasteDose(1, "mL", "partial_dose", pull_id=pull_id))
            assert mismatch.code == "workflow.unit_mismatch"
            too_much = await engine.execute(WasteDose(9, "mg", "partial_dose", pull_id=pull_id))
            assert too_much.code == "workflow.invalid_quantity"
            no_reason = await engine.execute(WasteDose(1, "mg", "spilled", pull_id=pull_id))
            assert no_reason.code == "workflow.reason_required"
            deferred = await ok(engine, DeferWaste(pull_id))
            assert deferred.data["state"] == "pending"
            assert (await engine.execute(DeferWaste(pull_id))).code == "engine.nothing_left"
            [pending] = asked(engine, ListPendingWastes("NURSE1")).data["wastes"]
            assert pending["waste_id"] == deferred.data["waste"]["waste_id"]
            assert (pending["removed_amount"], pending["unit"], pending["due"]) == (
                "8", "mg", "2026-11-25T19:00:00+00:00",
            )  # fmt: skip
            with seeded.read() as session:
                [row] = engine_state.pending_wastes(session, CABINET)
            assert (row.user_id, row.patient_id, row.order_id, row.lot_number) == ("NURSE1", "MRN1", "ORD1", "A1")
            await ok(engine, Logout())
            await ok(engine, Login("NURSE2", pin="2222"))
            assert (await engine.execute(WasteDose(1, "mg", "partial_dose", pull_id=pull_id))).code == (
                "workflow.not_owner"
            )
            refused = await engine.execute(WasteDose(1, "mg", "partial_dose", waste_id=pending["waste_id"]))
            assert refused.code == "workflow.not_owner"
            await ok(engine, Logout())
            clock.advance(timedelta(hours=6))
            await ok(engine, Tick())
            await ok(engine, Login("NURSE1", pin="1111"))
            before = stock(seeded)
            await ok(engine, WasteDose(Decimal("7.5"), "mg", "order_changed", waste_id=pending["waste_id"]))
            await ok(engine, SignWitness("NURSE2", pin="2222"))
            [wasted] = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert wasted["details"]["late"] is True and wasted["details"]["amount"] == "7.5"
            assert stock(seeded) == before
            assert asked(engine, ListPendingWastes("NURSE1")).data["wastes"] == ()

    run(scenario())


def test_non_controlled_waste_needs_no_witness(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            await ok(engine, SelectItem(pull_id, order_id="ORD2"))
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, Take(pull_id, 1))
            cab.world.close_drawer(1)
            await engine.poll()
            recorded = await ok(engine, WasteDose(2500, "units", "partial_dose", pull_id=pull_id))
            assert recorded.data["state"] == "recorded" and session_state(engine) == "authenticated"
            [wasted] = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert wasted["witness_id"] is None and wasted["details"]["removed_amount"] == "5000"

    run(scenario())


def test_a_waste_waiting_for_its_witness_at_a_restart_is_pending_again(seeded: Database, clock: FixedClock) -> None:
    """The controller stops while a controlled waste waits for its witness: the second engine on the same store and
    board puts it on the user's pending-waste list, where it is recorded with a witness as any pending waste."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            waiting = await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", pull_id=pull_id))
            assert waiting.data["state"] == "awaiting_witness"
            with seeded.read() as session:
                [row] = engine_state.owed_wastes(session, CABINET)
            assert row.status == "awaiting_witness"  # owed from the moment it waits: durable before the witness
            restarted = clinical_engine(seeded, cab.board, clock)  # killed; nobody signed
            assert (await restarted.restore()).ok
            [pending] = asked(restarted, ListPendingWastes("NURSE1")).data["wastes"]
            assert pending["state"] == "pending" and pending["removed_amount"] == "4"
            assert [w["waste_id"] for w in asked(restarted, ListPendingWork("NURSE1")).data["wastes"]] == [
                pending["waste_id"]
            ]
            with seeded.read() as session:
                [row] = engine_state.pending_wastes(session, CABINET, "NURSE1")
            assert row.status == "open"
            assert [r.event_type for r in entries(seeded)][-1] == "dose.waste_pending"
            await ok(restarted, Login("NURSE1", pin="1111"))
            again = await ok(restarted, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=pending["waste_id"]))
            assert again.data["state"] == "awaiting_witness"
            await ok(restarted, SignWitness("NURSE2", pin="2222"))
            wasted = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert [(w["actor_id"], w["witness_id"], w["details"]["amount"]) for w in wasted] == [
                ("NURSE1", "NURSE2", "4")
            ]
            assert asked(restarted, ListPendingWastes("NURSE1")).data["wastes"] == ()
            with seeded.read() as session:
                assert engine_state.pending_wastes(session, CABINET) == []
            assert chain_ok(seeded)

    run(scenario())


def test_a_waste_owed_across_a_restart_stays_the_waste_of_its_pull(seeded: Database, clock: FixedClock) -> None:
    """The dose of a waste waiting for its witness at a restart is still owed as waste: the second engine refuses
    a second waste and a return of it, and the waste recorded after the restart names its pull as any other."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", pull_id=pull_id))
            restarted = clinical_engine(seeded, cab.board, clock)
            await ready(restarted)
            [pending] = asked(restarted, ListPendingWastes("NURSE1")).data["wastes"]
            second = await restarted.execute(DeferWaste(pull_id))
            assert second.code == "engine.nothing_left", f"a second waste of the same dose was accepted: {second}"
            returned = await restarted.execute(ReturnDose(pull_id, 1))
            assert returned.code == "engine.nothing_left", f"a dose owed as waste was returned: {returned}"
            await ok(restarted, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=pending["waste_id"]))
            await ok(restarted, SignWitness("NURSE2", pin="2222"))
            [wasted] = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert wasted["details"]["pull_id"] == pull_id, "the waste recorded after the restart lost its pull"
            assert (await restarted.execute(ReturnDose(pull_id, 1))).code == "engine.nothing_left"
            assert stock(seeded)[BIN] == 0

    run(scenario())
