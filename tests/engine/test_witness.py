"""The witness step end to end (fake board and the driver on the simulator over Modbus TCP): a waste witnessed by a
second nurse, a cancelled step that keeps the waste, a witness's wrong PIN counting toward their own lockout, a
witness who may not sign, a removal witness unlocking the pull, a step abandoned at logoff, and the user's
pending work (wastes and actions waiting for a witness).

Also the clinical helpers the other clinical tests share, on the engine rig's clinical cabinet (a second nurse, a
technician and a return bin, board drawer 3)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.domain.medication import DeaSchedule
from controller.domain.policies import Policy, WitnessedAction
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    BeginWitness,
    CancelWitness,
    DeferWaste,
    EnterCount,
    GetPull,
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
from controller.engine.commands.clinical import WitnessFor
from controller.engine.results import CommandResult
from controller.hardware.io_board.interface import IoBoard
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import (
    CABINET,
    MORPHINE,
    RETURN_BIN,
    Cabinet,
    chain_ok,
    entries,
    ledger_stock_agrees,
    make_engine,
    open_cabinet,
    seed_clinical,
    stock,
)
from tests.hardware.io_board.rigs import run

KINDS = ("fake", "tcp")
BIN = RETURN_BIN
WITNESSED_RETURNS = Policy(
    witnessed_actions=frozenset({WitnessedAction.CONTROLLED_WASTE, WitnessedAction.CONTROLLED_RETURN})
)


def clinical_engine(
    db: Database, board: IoBoard, clock: FixedClock, policy: Policy | None = None, **settings: Any
) -> CabinetEngine:
    return make_engine(db, board, clock, policy=policy, **settings)


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed_clinical(db, clock)
    return db


async def ok(engine: CabinetEngine, command: Any) -> CommandResult[Any]:
    result = await engine.execute(command)
    assert result.ok, result
    return result


def asked(engine: CabinetEngine, query: Any) -> CommandResult[Any]:
    result = engine.query(query)
    assert result.ok, result
    return result


def pull_state(engine: CabinetEngine, pull_id: str) -> str:
    return str(asked(engine, GetPull(pull_id)).data["state"])


async def pull_morphine(engine: CabinetEngine, cab: Cabinet, quantity: int = 1, count: int = 9) -> str:
    """NURSE1 (logged in) pulls ``quantity`` morphine cartridges against ORD1 through the board; the pull id."""
    pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
    await ok(engine, SelectItem(pull_id, order_id="ORD1"))
    await ok(engine, EnterCount(pull_id, count))
    await take(engine, cab, pull_id, quantity)
    assert pull_state(engine, pull_id) == "done"
    return pull_id


async def take(engine: CabinetEngine, cab: Cabinet, pull_id: str, quantity: int) -> None:
    cab.world.open_drawer(2)
    await engine.poll()
    cab.world.lift_lid(2, 1)
    await engine.poll()
    assert pull_state(engine, pull_id) == "open"
    await ok(engine, Take(pull_id, quantity))
    cab.world.close_lid(2, 1)
    await engine.poll()
    cab.world.close_drawer(2)
    await engine.poll()


async def ready(engine: CabinetEngine, user: str = "NURSE1", pin: str = "1111") -> None:
    assert (await engine.restore()).ok
    await ok(engine, Login(user, pin=pin))


def session_state(engine: CabinetEngine) -> str:
    return str(engine.ctx.session.state.value)


def body(row: Any) -> dict[str, Any]:
    return dict(json.loads(row.body))


@pytest.mark.parametrize("kind", KINDS)
def test_pull_then_waste_half_with_a_witness(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            before = stock(seeded)
            waiting = await ok(engine, WasteDose(Decimal(2), "mg", "partial_dose", pull_id=pull_id))
            assert waiting.data["state"] == "awaiting_witness"
            assert waiting.data["witness_step"]["action"] == "controlled_waste"
            assert session_state(engine) == "witnessing"
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "recorded" and signed.data["witness_id"] == "NURSE2"
            wasted = [r for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert len(wasted) == 1
            doc = body(wasted[0])
            assert (doc["actor_id"], doc["witness_id"], doc["patient_id"], doc["order_id"]) == (
                "NURSE1", "NURSE2", "MRN1", "ORD1",
            )  # fmt: skip
            assert (doc["item_id"], doc["lot_number"], doc["reason_code"]) == (MORPHINE, "A1", "partial_dose")
            details = doc["details"]
            assert (details["amount"], details["unit"], details["removed_amount"]) == ("2", "mg", "4")
            assert details["pull_id"] == pull_id and details["partial"] is True
            assert doc["quantity_change"] is None
            assert stock(seeded) == before  # waste moves no pocket stock
            assert session_state(engine) == "authenticated"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_witness_keeps_the_waste_pending_until_recorded(
    kind: str, seeded: Database, clock: FixedClock
) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", pull_id=pull_id))
            cancelled = await ok(engine, CancelWitness())
            assert cancelled.data["cancelled"]["kind"] == "waste"
            assert [r.event_type for r in entries(seeded)][-1] == "dose.waste_pending"
            with seeded.read() as session:
                rows = engine_state.pending_wastes(session, CABINET, "NURSE1")
            assert len(rows) == 1 and rows[0].amount == "4" and rows[0].unit == "mg"
            await ok(engine, Logout())
            # a restart: the pending waste comes back from its row
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            [pending] = asked(engine, ListPendingWastes("NURSE1")).data["wastes"]
            assert pending["state"] == "pending" and pending["due"] == "2026-11-25T19:00:00+00:00"
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=pending["waste_id"]))
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "recorded"
            assert asked(engine, ListPendingWastes("NURSE1")).data["wastes"] == ()
            with seeded.read() as session:
                assert engine_state.pending_wastes(session, CABINET) == []
            wasted = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert [(w["witness_id"], w["details"]["amount"]) for w in wasted] == [("NURSE2", "4")]
            assert chain_ok(seeded)

    run(scenario())


def test_a_wrong_witness_pin_counts_toward_the_witness_lockout(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, max_failed_logins=3)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "contaminated", pull_id=pull_id))
            for attempt in range(1, 4):
                refused = await engine.execute(SignWitness("NURSE2", pin="0000"))
                assert refused.code == "auth.bad_credentials" and refused.data["failures"] == attempt
            locked = await engine.execute(SignWitness("NURSE2", pin="2222"))
            assert locked.code == "session.locked_out"
            with seeded.read() as session:
                assert engine_state.load_lockouts(session)["NURSE2"].locked_at is not None
            kinds = [body(r)["details"].get("kind") for r in entries(seeded)]
            assert kinds.count("session.witness_failed") == 3 and "session.locked_out" in kinds
            # another witness may still sign; the step never closed
            assert (await ok(engine, SignWitness("PHARM1", pin="3333"))).data["witness_id"] == "PHARM1"

    run(scenario())


def test_who_may_not_witness(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "contaminated", pull_id=pull_id))
            assert (await engine.execute(SignWitness("NURSE1", pin="1111"))).code == "policy.witness_is_actor"
            assert (await engine.execute(SignWitness("TECH1", pin="4444"))).code == "policy.witness_lacks_privilege"
            assert (await engine.execute(SignWitness("NOBODY", pin="1"))).code == "auth.bad_credentials"
            # the pull is done: it waits for no witness (the begin names its target now)
            assert (await engine.execute(BeginWitness(WitnessFor.PULL, pull_id))).code == "engine.no_workflow"
            assert not [r for r in entries(seeded) if r.event_type == "dose.wasted"]

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_removal_witness_unlocks_the_pull(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock, removal_witness_schedules=frozenset({DeaSchedule.II}))
            await ready(engine)
            pull_id = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            await ok(engine, SelectItem(pull_id, order_id="ORD1"))
            counted = await ok(engine, EnterCount(pull_id, 9))
            assert counted.data["state"] == "awaiting_witness" and not cab.drawer_released(2)
            assert (await engine.execute(SignWitness("NURSE2", pin="2222"))).code == "engine.no_witness_step"
            [waiting] = asked(engine, ListPendingWork("NURSE1")).data["witness_steps"]
            assert (waiting["kind"], waiting["target_id"]) == ("pull", pull_id)
            await ok(engine, BeginWitness(WitnessFor.PULL, pull_id))
            await ok(engine, CancelWitness())
            assert pull_state(engine, pull_id) == "awaiting_witness"
            await ok(engine, BeginWitness(WitnessFor.PULL, pull_id))
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "unlocking" and cab.drawer_released(2) and cab.lid_released(2, 1)
            await take(engine, cab, pull_id, 1)
            [removed] = [body(r) for r in entries(seeded) if r.event_type == "dose.removed"]
            assert (removed["actor_id"], removed["witness_id"]) == ("NURSE1", "NURSE2")

    run(scenario())


def test_a_step_abandoned_at_logoff_leaves_the_waste_pending(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            pull_id = await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(1), "mg", "partial_dose", pull_id=pull_id))
            await ok(engine, Logout())
            await engine.execute(Tick())
            assert [r.event_type for r in entries(seeded)][-1] == "dose.waste_pending"
            with seeded.read() as session:
                [row] = engine_state.pending_wastes(session, CABINET, "NURSE1")
            assert row.status == "open"
            await ok(engine, Login("NURSE1", pin="1111"))
            [pending] = asked(engine, ListPendingWastes("NURSE1")).data["wastes"]
            assert pending["state"] == "pending"

    run(scenario())


# --- the user's pending work --------------------------------------------------------------------------------------


def test_pending_work_lists_wastes_and_witness_steps(seeded: Database, clock: FixedClock) -> None:
    """A deferred waste and a removal waiting for its witness are both on NURSE1's pending work, not on NURSE2's;
    each leaves the list once done."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, removal_witness_schedules=frozenset({DeaSchedule.II}))
            await ready(engine)
            assert asked(engine, ListPendingWork("NURSE1")).data == {"wastes": (), "witness_steps": ()}
            first = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            await ok(engine, SelectItem(first, order_id="ORD1"))
            await ok(engine, EnterCount(first, 9))
            await ok(engine, BeginWitness(WitnessFor.PULL, first))
            await ok(engine, SignWitness("NURSE2", pin="2222"))
            await take(engine, cab, first, 1)
            deferred = await ok(engine, DeferWaste(first))
            waste_id = deferred.data["waste"]["waste_id"]
            second = (await ok(engine, StartPull("MRN1"))).unwrap().pull_id
            await ok(engine, SelectItem(second, order_id="ORD1"))
            assert (await ok(engine, EnterCount(second, 8))).data["state"] == "awaiting_witness"
            work = asked(engine, ListPendingWork("NURSE1")).data
            assert [w["waste_id"] for w in work["wastes"]] == [waste_id]
            assert [(s["kind"], s["target_id"], s["action"]) for s in work["witness_steps"]] == [
                ("pull", second, "controlled_removal")
            ]
            assert asked(engine, ListPendingWork("NURSE2")).data == {"wastes": (), "witness_steps": ()}
            await ok(engine, BeginWitness(WitnessFor.PULL, second))
            await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert asked(engine, ListPendingWork("NURSE1")).data["witness_steps"] == ()
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=waste_id))
            await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert asked(engine, ListPendingWork("NURSE1")).data["wastes"] == ()

    run(scenario())


def test_an_action_entered_while_another_step_is_open_is_not_signed_by_it(seeded: Database, clock: FixedClock) -> None:
    """One witness step at a time: a controlled waste entered while a return's step is open is told that no step
    opened for it and waits on the pending list; the witness who signs next signs the return only, and the waste is
    recorded later with its own witness."""

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, policy=WITNESSED_RETURNS)
            await ready(engine)
            returned = await pull_morphine(engine, cab)
            wasted = await pull_morphine(engine, cab, count=8)
            return_id = (await ok(engine, ReturnDose(returned, 1))).data["return_id"]
            waste = await engine.execute(WasteDose(Decimal(4), "mg", "patient_refused", pull_id=wasted))
            assert not waste.ok and waste.code == "fsm.event_not_allowed", (
                f"a waste whose witness step could not open was reported as waiting for a witness: {waste}"
            )
            assert waste.data["state"] == "pending" and waste.data["witness_step"] is None
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["return_id"] == return_id and signed.data["state"] == "done"
            assert not [r for r in entries(seeded) if r.event_type == "dose.wasted"]
            [pending] = asked(engine, ListPendingWastes("NURSE1")).data["wastes"]
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=pending["waste_id"]))
            await ok(engine, SignWitness("PHARM1", pin="3333"))
            [doc] = [body(r) for r in entries(seeded) if r.event_type == "dose.wasted"]
            assert (doc["witness_id"], doc["details"]["pull_id"]) == ("PHARM1", wasted)

    run(scenario())


def test_a_return_entered_while_another_step_is_open_waits_for_its_own(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock, policy=WITNESSED_RETURNS)
            await ready(engine)
            wasted = await pull_morphine(engine, cab)
            returned = await pull_morphine(engine, cab, count=8)
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", pull_id=wasted))
            started = await engine.execute(ReturnDose(returned, 1))
            assert not started.ok and started.code == "fsm.event_not_allowed", started
            assert started.data["state"] == "awaiting_witness" and started.data["witness_step"] is None
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "recorded"  # the waste's step, not the return's
            assert stock(seeded)[BIN] == 0
            [step] = asked(engine, ListPendingWork("NURSE1")).data["witness_steps"]
            assert (step["kind"], step["target_id"]) == ("return", started.data["return_id"])
            await ok(engine, BeginWitness(WitnessFor.RETURN, started.data["return_id"]))
            assert (await ok(engine, SignWitness("NURSE2", pin="2222"))).data["state"] == "done"
            assert stock(seeded)[BIN] == 1

    run(scenario())
