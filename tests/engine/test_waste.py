"""Waste rules at the engine: deferring to the pending list with its due time, refusals (unit, owner, nothing
left), a non-controlled waste recorded without a witness, and a late waste recorded after escalation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from controller.domain.clock import FixedClock
from controller.engine.commands import Login, Logout, SelectItem, StartPull, Take, Tick
from controller.engine.commands_clinical import DeferWaste, ListPendingWastes, SignWitness, WasteDose
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, entries, open_cabinet, stock
from tests.engine.test_witness import body, clinical_engine, ok, pull_morphine, ready, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


def test_deferred_waste_refusals_and_a_late_record(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            assert (await engine.execute(WasteDose(1, "mg", "partial_dose"))).code == "engine.no_removal"
            pull_id = await pull_morphine(engine, cab, quantity=2)
            assert (await engine.execute(WasteDose(1, "mL", "partial_dose"))).code == "workflow.unit_mismatch"
            assert (await engine.execute(WasteDose(9, "mg", "partial_dose"))).code == "workflow.invalid_quantity"
            assert (await engine.execute(WasteDose(1, "mg", "spilled"))).code == "workflow.reason_required"
            deferred = await ok(engine, DeferWaste())
            assert deferred.data["state"] == "pending"
            assert (await engine.execute(DeferWaste())).code == "engine.nothing_left"
            [pending] = (await ok(engine, ListPendingWastes())).data["wastes"]
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
            assert (await ok(engine, ListPendingWastes())).data["wastes"] == []

    run(scenario())


def test_non_controlled_waste_needs_no_witness(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await ok(engine, StartPull("MRN1"))
            await ok(engine, SelectItem(order_id="ORD2"))
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, Take(1))
            cab.world.close_drawer(1)
            await engine.poll()
            recorded = await ok(engine, WasteDose(2500, "units", "partial_dose"))
            assert recorded.data["state"] == "recorded" and engine.session.state.value == "authenticated"
            [wasted] = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert wasted["witness_id"] is None and wasted["details"]["removed_amount"] == "5000"

    run(scenario())
