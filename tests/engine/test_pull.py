"""The engine end to end: login, a schedule II pull with a blind count through the I/O board (the in-memory fake
and the driver on the simulator over Modbus TCP), lockout, discrepancies, jams, tamper, negative stock, restart."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    AccountFor,
    EnterCount,
    Login,
    Logout,
    SelectItem,
    StartPull,
    Take,
)
from controller.fsm.compartment import CompartmentState
from controller.store import engine_state
from controller.store.database import Database
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger
from simulators.common.faults import Fault, FaultKind, FaultPlan
from tests.engine.rig import (
    CABINET,
    MORPHINE,
    Cabinet,
    chain_ok,
    entries,
    last_seq,
    ledger_stock_agrees,
    lots,
    make_engine,
    open_cabinet,
    seed,
    stock,
)
from tests.hardware.io_board.rigs import run

KINDS = ("fake", "tcp")


def state_of(engine: CabinetEngine, compartment_id: str) -> CompartmentState:
    state = engine.compartments[compartment_id].state
    assert isinstance(state, CompartmentState)
    return state


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


async def _ready(engine: CabinetEngine) -> None:
    assert (await engine.restore()).ok
    assert (await engine.execute(Login("NURSE1", pin="1111"))).ok


async def _pull_to_unlock(engine: CabinetEngine, count: int = 9) -> None:
    assert (await engine.execute(StartPull("MRN1"))).ok
    chosen = await engine.execute(SelectItem(order_id="ORD1"))
    assert chosen.ok, chosen
    assert chosen.data["state"] == "blind_count"
    assert "expected_on_hand" not in json.dumps(chosen.data["pull"])  # the count is blind
    unlocked = await engine.execute(EnterCount(count))
    assert unlocked.ok, unlocked


async def _person_takes(engine: CabinetEngine, cab: Cabinet, quantity: int = 1) -> None:
    cab.world.open_drawer(2)
    await engine.poll()
    cab.world.lift_lid(2, 1)
    await engine.poll()
    assert engine.pull is not None and engine.pull.state.value == "open"
    taken = await engine.execute(Take(quantity))
    assert taken.ok, taken
    cab.world.close_lid(2, 1)
    await engine.poll()
    cab.world.close_drawer(2)
    await engine.poll()


@pytest.mark.parametrize("kind", KINDS)
def test_schedule_ii_pull_with_blind_count_end_to_end(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            start = last_seq(seeded)
            await _ready(engine)
            assert not cab.drawer_released(2)
            await _pull_to_unlock(engine, count=9)
            # the unlock went over the wire: the board's latches are released
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            assert not cab.drawer_released(1)
            await _person_takes(engine, cab, 1)
            assert engine.pull is not None and engine.pull.state.value == "done"
            assert state_of(engine, "D2") is CompartmentState.LOCKED
            assert engine.compartments["D2-P01"].state is CompartmentState.LOCKED
            assert stock(seeded)["D2-P01"] == 8
            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 1, "B2": 6}  # FEFO, expired lot skipped
            kinds = [(r.event_type, json.loads(r.body)["details"].get("kind")) for r in entries(seeded, start)]
            assert kinds[0] == ("session.login", "session.login")
            assert ("count.entered", "count.entered") in kinds
            assert ("drawer.opened", "drawer.opened") in kinds
            assert ("drawer.tamper", "drawer.tamper") not in kinds
            removed = [r for r in entries(seeded, start) if r.event_type == "dose.removed"]
            assert len(removed) == 1
            r = removed[0]
            assert (r.actor_id, r.patient_id, r.order_id, r.item_id, r.pocket_id, r.lot_number, r.quantity_change) == (
                "NURSE1", "MRN1", "ORD1", MORPHINE, "D2-P01", "A1", -1,
            )  # fmt: skip
            assert json.loads(r.body)["is_simulator"] is True
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_fefo_splits_a_removal_across_lots(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            await _pull_to_unlock(engine)
            await _person_takes(engine, cab, 3)
            assert lots(seeded, "D2-P01") == {"OLD": 1, "B2": 5}
            removed = [r for r in entries(seeded) if r.event_type == "dose.removed"]
            assert [(r.lot_number, r.quantity_change) for r in removed] == [("A1", -2), ("B2", -1)]
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_pin_is_recorded_and_locks_out_persistently(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            for attempt in range(1, 6):
                result = await engine.execute(Login("NURSE1", pin="9999"))
                assert not result.ok and result.code == "auth.bad_credentials"
                assert result.data["failures"] == attempt
            refused = await engine.execute(Login("NURSE1", pin="1111"))
            assert refused.code == "session.locked_out"
            failed = [json.loads(r.body)["details"].get("kind") for r in entries(seeded)]
            assert failed.count("session.login_failed") == 5
            assert failed.count("session.locked_out") == 1
            # a new engine on the same store (a restart) still refuses
            again = make_engine(seeded, cab.board, clock)
            assert (await again.execute(Login("NURSE1", pin="1111"))).code == "session.locked_out"
            clock.advance(timedelta(minutes=16))
            assert (await again.execute(Login("NURSE1", pin="1111"))).ok
            with seeded.read() as session:
                assert engine_state.load_lockouts(session) == {}
            unknown = await again.execute(Logout())
            assert unknown.ok
            assert (await again.execute(Login("NOBODY", pin="1111"))).code == "auth.bad_credentials"
            assert chain_ok(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_blind_count_mismatch_raises_a_persisted_discrepancy(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            await _pull_to_unlock(engine, count=7)
            raised = [r for r in entries(seeded) if r.event_type == "discrepancy.raised"]
            assert len(raised) == 1
            with seeded.read() as session:
                (open_one,) = engine_state.open_discrepancies(session, CABINET)
            assert (open_one.pocket_id, open_one.expected, open_one.counted, open_one.raised_by) == (
                "D2-P01", 9, 7, "NURSE1",
            )  # fmt: skip
            assert open_one.ledger_seq == raised[0].seq and open_one.controlled
            assert open_one.deadline > open_one.raised_at
            # the pull continues (stop_pull_on_count_mismatch is off) and the drawer was unlocked
            assert cab.drawer_released(2)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_jam_during_pull_is_a_typed_refusal_and_nothing_moves(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        faults = FaultPlan([Fault(FaultKind.JAM_DRAWER, at_request=1, params={"drawer": 2})])
        async with open_cabinet(kind, faults=faults) as cab:
            if kind == "fake":
                cab.world.jam_drawer(2)
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            before = stock(seeded)
            assert (await engine.execute(StartPull("MRN1"))).ok
            assert (await engine.execute(SelectItem(order_id="ORD1"))).ok
            result = await engine.execute(EnterCount(9))
            assert not result.ok and result.code == "device.drawer_jammed"
            assert result.data["state"] == "failed"
            assert state_of(engine, "D2") is CompartmentState.JAMMED
            assert stock(seeded) == before
            failed = [r for r in entries(seeded) if json.loads(r.body)["details"].get("kind") == "drawer.unlock_failed"]
            assert len(failed) == 1 and json.loads(failed[0].body)["reason_code"] == "jammed"
            assert chain_ok(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_drawer_opened_without_a_grant_is_tamper(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            cab.force_open(1)
            await engine.poll()
            tamper = [r for r in entries(seeded) if r.event_type == "drawer.tamper"]
            assert len(tamper) == 1 and json.loads(tamper[0].body)["details"]["compartment_id"] == "D1"
            assert engine.compartments["D1"].state is CompartmentState.BREACHED
            # and nothing else opens until it is closed and accounted for
            assert (await engine.execute(StartPull("MRN1"))).ok
            refused = await engine.execute(SelectItem(order_id="ORD2"))
            assert refused.code == "compartment.unaccounted"
            assert not cab.drawer_released(1)

    run(scenario())


def test_negative_stock_is_refused_with_nothing_written(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            await _pull_to_unlock(engine)
            cab.world.open_drawer(2)
            cab.world.lift_lid(2, 1)
            await engine.poll()
            # meanwhile the usable stock goes elsewhere (another cabinet process, a restock error)
            ledger = Ledger(CABINET, clock, is_simulator=True)
            with seeded.write() as session:
                for lot, units in (("A1", 2), ("B2", 6)):
                    InventoryStore(ledger).apply(
                        session, StockChange("D2-P01", lot, -units), LedgerRecord(EventType.STOCK_UNLOADED)
                    )
            before, seq = stock(seeded), last_seq(seeded)
            refused = await engine.execute(Take(1))
            assert refused.code == "inventory.negative_quantity"
            assert stock(seeded) == before and last_seq(seeded) == seq
            assert engine.pull is not None and engine.pull.state.value == "open"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_removal_refused_by_the_store_at_close_leaves_a_discrepancy(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            await _pull_to_unlock(engine)
            cab.world.open_drawer(2)
            cab.world.lift_lid(2, 1)
            await engine.poll()
            assert (await engine.execute(Take(1))).ok
            ledger = Ledger(CABINET, clock, is_simulator=True)
            with seeded.write() as session:
                for lot, units in (("A1", 2), ("B2", 6)):
                    InventoryStore(ledger).apply(
                        session, StockChange("D2-P01", lot, -units), LedgerRecord(EventType.STOCK_UNLOADED)
                    )
            before = stock(seeded)
            cab.world.close_lid(2, 1)
            result = await engine.poll()
            assert result.code == "inventory.negative_quantity"
            assert stock(seeded) == before
            kinds = [json.loads(r.body)["details"].get("kind") for r in entries(seeded)]
            assert "dose.removed" not in kinds[-3:]
            last = json.loads(entries(seeded)[-1].body)
            assert last["reason_code"] == "removal_not_recorded"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_restart_with_a_drawer_left_open(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            await _pull_to_unlock(engine)
            cab.world.open_drawer(2)
            await engine.poll()
            # the controller restarts with drawer 2 open
            engine = make_engine(seeded, cab.board, clock)
            restored = await engine.restore()
            assert restored.data["found_open"] == ["D2"]
            found = [r for r in entries(seeded) if json.loads(r.body)["details"].get("kind") == "drawer.found_open"]
            assert len(found) == 1
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            assert (await engine.execute(StartPull("MRN1"))).ok
            assert (await engine.execute(SelectItem(order_id="ORD2"))).code == "compartment.unaccounted"
            cab.world.close_drawer(2)
            await engine.poll()
            assert state_of(engine, "D2") is CompartmentState.UNACCOUNTED
            assert (await engine.execute(AccountFor("D2", counted=9))).code == "policy.privilege_missing"
            assert (await engine.execute(Logout())).ok
            assert (await engine.execute(Login("PHARM1", pin="3333"))).ok
            accounted = await engine.execute(AccountFor("D2", counted=9))
            assert accounted.ok, accounted
            assert state_of(engine, "D2") is CompartmentState.LOCKED
            assert (await engine.execute(Logout())).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            assert (await engine.execute(StartPull("MRN1"))).ok
            assert (await engine.execute(SelectItem(order_id="ORD2"))).ok
            assert cab.drawer_released(1)
            assert chain_ok(seeded)

    run(scenario())
