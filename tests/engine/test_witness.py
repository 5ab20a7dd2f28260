"""The witness step end to end (fake board and the driver on the simulator over Modbus TCP): a waste witnessed by a
second nurse, a cancelled step that keeps the waste, a witness's wrong PIN counting toward their own lockout, a
witness who may not sign, a removal witness unlocking the pull, and a step abandoned at logoff.

Also the clinical rig the other clinical tests share: the engine rig's cabinet plus a second nurse, a technician
and a return bin (board drawer 3)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.domain.medication import DeaSchedule
from controller.domain.policies import Policy
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import CommandResult, EnterCount, Login, Logout, SelectItem, StartPull, Take, Tick
from controller.engine.commands_clinical import (
    BeginWitness,
    CancelWitness,
    ListPendingWastes,
    SignWitness,
    WasteDose,
    WitnessFor,
)
from controller.fsm.settings import FsmSettings
from controller.hardware.io_board.interface import IoBoard
from controller.store import engine_state
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from tests.engine import rig
from tests.engine.rig import CABINET, MORPHINE, Cabinet, chain_ok, entries, ledger_stock_agrees, open_cabinet, stock
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER

KINDS = ("fake", "tcp")
BIN = "D3-P01"


def clinical_layout() -> dict[str, Any]:
    layout = rig.layout()
    layout["user"] += [
        {"id": "NURSE2", "name": "Nurse Two", "roles": ["nurse"], "pin": "2222"},
        {"id": "TECH1", "name": "Technician", "roles": ["technician"], "pin": "4444"},
    ]
    layout["drawer"].append({"id": "D3", "kind": "return_bin", "label": "returns", "pocket": [{"id": BIN}]})
    return layout


def seed_clinical(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        seed_cabinet(
            session,
            clinical_layout(),
            load_formulary(),
            ledger=Ledger(CABINET, clock, is_simulator=True),
            hasher=FAST_HASHER,
            clock=clock,
        )


def clinical_engine(
    db: Database, board: IoBoard, clock: FixedClock, policy: Policy | None = None, **settings: Any
) -> CabinetEngine:
    return CabinetEngine(
        db=db,
        ledger=Ledger(CABINET, clock, is_simulator=True),
        board=board,
        clock=clock,
        policy=policy or Policy(),
        settings=FsmSettings(**settings),
        hasher=FAST_HASHER,
        io_timeout_s=2.0,
    )


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed_clinical(db, clock)
    return db


async def ok(engine: CabinetEngine, command: Any) -> CommandResult:
    result = await engine.execute(command)
    assert result.ok, result
    return result


async def pull_morphine(engine: CabinetEngine, cab: Cabinet, quantity: int = 1, count: int = 9) -> str:
    """NURSE1 (logged in) pulls ``quantity`` morphine cartridges against ORD1 through the board."""
    await ok(engine, StartPull("MRN1"))
    await ok(engine, SelectItem(order_id="ORD1"))
    await ok(engine, EnterCount(count))
    await take(engine, cab, quantity)
    assert engine.pull is not None and engine.pull.state.value == "done"
    return engine.pull.id


async def take(engine: CabinetEngine, cab: Cabinet, quantity: int) -> None:
    cab.world.open_drawer(2)
    await engine.poll()
    cab.world.lift_lid(2, 1)
    await engine.poll()
    await ok(engine, Take(quantity))
    cab.world.close_lid(2, 1)
    await engine.poll()
    cab.world.close_drawer(2)
    await engine.poll()


async def ready(engine: CabinetEngine, user: str = "NURSE1", pin: str = "1111") -> None:
    assert (await engine.restore()).ok
    await ok(engine, Login(user, pin=pin))


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
            waiting = await ok(engine, WasteDose(Decimal(2), "mg", "partial_dose"))
            assert waiting.data["state"] == "awaiting_witness"
            assert waiting.data["witness_step"]["action"] == "controlled_waste"
            assert engine.session.state.value == "witnessing"
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
            assert engine.session.state.value == "authenticated"
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
            await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused"))
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
            listed = await ok(engine, ListPendingWastes())
            [pending] = listed.data["wastes"]
            assert pending["state"] == "pending" and pending["due"] == "2026-11-25T19:00:00+00:00"
            await ok(engine, WasteDose(Decimal(4), "mg", "patient_refused", waste_id=pending["waste_id"]))
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "recorded"
            assert (await ok(engine, ListPendingWastes())).data["wastes"] == []
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
            await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "contaminated"))
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
            await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(4), "mg", "contaminated"))
            assert (await engine.execute(SignWitness("NURSE1", pin="1111"))).code == "policy.witness_is_actor"
            assert (await engine.execute(SignWitness("TECH1", pin="4444"))).code == "policy.witness_lacks_privilege"
            assert (await engine.execute(SignWitness("NOBODY", pin="1"))).code == "auth.bad_credentials"
            assert (await engine.execute(BeginWitness(WitnessFor.PULL))).code == "engine.no_workflow"
            assert not [r for r in entries(seeded) if r.event_type == "dose.wasted"]

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_removal_witness_unlocks_the_pull(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock, removal_witness_schedules=frozenset({DeaSchedule.II}))
            await ready(engine)
            await ok(engine, StartPull("MRN1"))
            await ok(engine, SelectItem(order_id="ORD1"))
            counted = await ok(engine, EnterCount(9))
            assert counted.data["state"] == "awaiting_witness" and not cab.drawer_released(2)
            assert (await engine.execute(SignWitness("NURSE2", pin="2222"))).code == "engine.no_witness_step"
            await ok(engine, BeginWitness(WitnessFor.PULL))
            await ok(engine, CancelWitness())
            assert engine.pull is not None and engine.pull.state.value == "awaiting_witness"
            await ok(engine, BeginWitness(WitnessFor.PULL))
            signed = await ok(engine, SignWitness("NURSE2", pin="2222"))
            assert signed.data["state"] == "unlocking" and cab.drawer_released(2) and cab.lid_released(2, 1)
            await take(engine, cab, 1)
            [removed] = [body(r) for r in entries(seeded) if r.event_type == "dose.removed"]
            assert (removed["actor_id"], removed["witness_id"]) == ("NURSE1", "NURSE2")

    run(scenario())


def test_a_step_abandoned_at_logoff_leaves_the_waste_pending(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab)
            await ok(engine, WasteDose(Decimal(1), "mg", "partial_dose"))
            await ok(engine, Logout())
            await engine.execute(Tick())
            assert [r.event_type for r in entries(seeded)][-1] == "dose.waste_pending"
            with seeded.read() as session:
                [row] = engine_state.pending_wastes(session, CABINET, "NURSE1")
            assert row.status == "open"
            await ok(engine, Login("NURSE1", pin="1111"))
            [pending] = (await ok(engine, ListPendingWastes())).data["wastes"]
            assert pending["state"] == "pending"

    run(scenario())
