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
    CancelPull,
    EnterCount,
    GetPull,
    ListPulls,
    Login,
    Logout,
    SelectItem,
    StartPull,
    Take,
)
from controller.fsm.compartment import CompartmentState
from controller.store import engine_state
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from simulators.common.faults import Fault, FaultKind, FaultPlan
from tests.engine.rig import (
    CABINET,
    MORPHINE,
    Cabinet,
    chain_ok,
    entries,
    last_seq,
    layout,
    ledger_stock_agrees,
    lots,
    make_engine,
    open_cabinet,
    seed,
    stock,
)
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER

KINDS = ("fake", "tcp")


def state_of(engine: CabinetEngine, compartment_id: str) -> CompartmentState:
    state = engine.ctx.compartments[compartment_id].state
    assert isinstance(state, CompartmentState)
    return state


def pull_state(engine: CabinetEngine, pull_id: str) -> str:
    return engine.query(GetPull(pull_id)).unwrap().state


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


async def _ready(engine: CabinetEngine) -> None:
    assert (await engine.restore()).ok
    assert (await engine.execute(Login("NURSE1", pin="1111"))).ok


async def _pull_to_unlock(engine: CabinetEngine, count: int = 9) -> str:
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    chosen = await engine.execute(SelectItem(pull_id, order_id="ORD1"))
    assert chosen.ok, chosen
    assert chosen.data["state"] == "blind_count"
    assert "expected_on_hand" not in json.dumps(chosen.data["pull"])  # the count is blind
    unlocked = await engine.execute(EnterCount(pull_id, count))
    assert unlocked.ok, unlocked
    return pull_id


async def _person_takes(engine: CabinetEngine, cab: Cabinet, pull_id: str, quantity: int = 1) -> None:
    cab.world.open_drawer(2)
    await engine.poll()
    cab.world.lift_lid(2, 1)
    await engine.poll()
    assert pull_state(engine, pull_id) == "open"
    taken = await engine.execute(Take(pull_id, quantity))
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
            pull_id = await _pull_to_unlock(engine, count=9)
            # the unlock went over the wire: the board's latches are released
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            assert not cab.drawer_released(1)
            await _person_takes(engine, cab, pull_id, 1)
            assert pull_state(engine, pull_id) == "done"
            assert state_of(engine, "D2") is CompartmentState.LOCKED
            assert state_of(engine, "D2-P01") is CompartmentState.LOCKED
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
            pull_id = await _pull_to_unlock(engine)
            await _person_takes(engine, cab, pull_id, 3)
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
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok
            result = await engine.execute(EnterCount(pull_id, 9))
            assert not result.ok and result.code == "device.drawer_jammed"
            assert result.data["state"] == "failed"  # the actuation failed: the pull ended
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
            assert state_of(engine, "D1") is CompartmentState.BREACHED
            # and nothing else opens until it is closed and accounted for
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            refused = await engine.execute(SelectItem(pull_id, order_id="ORD2"))
            assert refused.code == "compartment.unaccounted"
            assert not cab.drawer_released(1)
            assert pull_state(engine, pull_id) == "ready"  # refused before anything moved: it stays ready

    run(scenario())


def test_negative_stock_is_refused_with_nothing_written(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            pull_id = await _pull_to_unlock(engine)
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
            refused = await engine.execute(Take(pull_id, 1))
            assert refused.code == "inventory.negative_quantity"
            assert stock(seeded) == before and last_seq(seeded) == seq
            assert pull_state(engine, pull_id) == "open"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_removal_refused_by_the_store_at_close_leaves_a_discrepancy(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            pull_id = await _pull_to_unlock(engine)
            cab.world.open_drawer(2)
            cab.world.lift_lid(2, 1)
            await engine.poll()
            assert (await engine.execute(Take(pull_id, 1))).ok
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
            pull_id = await _pull_to_unlock(engine)
            cab.world.open_drawer(2)
            await engine.poll()
            # the controller restarts with drawer 2 open
            engine = make_engine(seeded, cab.board, clock)
            restored = await engine.restore()
            assert restored.data["found_open"] == ("D2",)
            found = [r for r in entries(seeded) if json.loads(r.body)["details"].get("kind") == "drawer.found_open"]
            assert len(found) == 1
            # the interrupted pull ends on the record: its lid never opened, so it is a cancel, not an access
            ended = [json.loads(r.body) for r in entries(seeded) if r.event_type == "workflow.cancelled"]
            assert [(e["details"]["pull_id"], e["reason_code"]) for e in ended] == [(pull_id, "controller_restarted")]
            assert not [r for r in entries(seeded) if r.event_type == "discrepancy.raised"]
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            blocked = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(blocked, order_id="ORD2"))).code == "compartment.unaccounted"
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
            heparin = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(heparin, order_id="ORD2"))).ok
            assert cab.drawer_released(1)
            assert chain_ok(seeded)

    run(scenario())


# --- several pulls, refused and cancelled unlocks (the new engine) -------------------------------------------------


async def _heparin_selected(engine: CabinetEngine, state: str = "unlocking") -> str:
    """A heparin pull (no blind count) of D1-P01 in matrix drawer D1: selecting the item unlocks the drawer (or
    joins it, ``state`` "open", when it is already open for this session)."""
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    chosen = await engine.execute(SelectItem(pull_id, order_id="ORD2"))
    assert chosen.ok, chosen
    assert chosen.data["state"] == state and chosen.data["unlocked"] == ("D1",), chosen
    return pull_id


@pytest.mark.parametrize("kind", KINDS)
def test_two_pulls_of_one_session_share_an_open_matrix_drawer(kind: str, seeded: Database, clock: FixedClock) -> None:
    """The second pull of the same patient joins drawer D1 while the first holds it open: D1 holds one grant per
    pull, nothing is actuated again, and both takes are booked when it closes."""

    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            first = await _heparin_selected(engine)
            cab.world.open_drawer(1)
            await engine.poll()
            assert pull_state(engine, first) == "open"
            actuations = engine.actuations
            second = await _heparin_selected(engine, "open")
            assert second != first
            assert set(engine.ctx.compartments["D1"].grants) == {first, second}
            assert engine.actuations == actuations  # joined the open drawer: no latch moved
            assert pull_state(engine, second) == "open", "a pull that joined an open drawer can take from it"
            assert (await engine.execute(Take(first, 1))).ok
            taken = await engine.execute(Take(second, 1))
            assert taken.ok, taken
            cab.world.close_drawer(1)
            await engine.poll()
            assert (pull_state(engine, first), pull_state(engine, second)) == ("done", "done")
            assert state_of(engine, "D1") is CompartmentState.LOCKED and not cab.drawer_released(1)
            removed = [(json.loads(r.body)["details"]["pull_id"], r.quantity_change)
                       for r in entries(seeded) if r.event_type == "dose.removed"]  # fmt: skip
            assert sorted(removed) == sorted([(first, -1), (second, -1)])
            assert stock(seeded)["D1-P01"] == 3
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_pull_refused_because_its_drawer_is_jammed_stays_ready_and_can_be_cancelled(
    kind: str, seeded: Database, clock: FixedClock
) -> None:
    """Once D2 is jammed, the next unlock of D2-P01 is refused before anything moves: the pull stays ready (it is
    not failed), nothing is released, and cancelling it is recorded."""

    async def scenario() -> None:
        faults = FaultPlan([Fault(FaultKind.JAM_DRAWER, at_request=1, params={"drawer": 2})])
        async with open_cabinet(kind, faults=faults) as cab:
            if kind == "fake":
                cab.world.jam_drawer(2)
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            jammed = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(jammed, order_id="ORD1"))).ok
            assert (await engine.execute(EnterCount(jammed, 9))).code == "device.drawer_jammed"
            assert state_of(engine, "D2") is CompartmentState.JAMMED
            actuations, seq = engine.actuations, last_seq(seeded)
            # The jammed drawer's own latch stays as the failed unlock left it (released until its hold runs out on
            # the board: nothing relocks a compartment whose grant died with the jam); its lid was never unlocked.
            latches = (cab.drawer_released(2), cab.lid_released(2, 1))
            assert not latches[1]
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok
            refused = await engine.execute(EnterCount(pull_id, 9))
            assert not refused.ok and refused.code == "fsm.event_not_allowed", refused
            assert refused.context.get("compartment") == "D2"
            assert refused.data["state"] == "ready" and pull_state(engine, pull_id) == "ready"
            assert engine.actuations == actuations  # nothing was asked of the board
            assert (cab.drawer_released(2), cab.lid_released(2, 1)) == latches
            assert not [r for r in entries(seeded, seq) if r.event_type == "drawer.unlock_failed"]
            cancelled = await engine.execute(CancelPull(pull_id))
            assert cancelled.ok and cancelled.data["state"] == "cancelled", cancelled
            ended = [json.loads(r.body) for r in entries(seeded, seq) if r.event_type == "workflow.cancelled"]
            assert [(e["details"]["pull_id"], e["reason_code"]) for e in ended] == [(pull_id, "cancelled_by_user")]
            assert not cab.lid_released(2, 1) and state_of(engine, "D2") is CompartmentState.JAMMED
            assert chain_ok(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_pull_cancelled_while_unlocking_relocks_drawer_and_lid(
    kind: str, seeded: Database, clock: FixedClock
) -> None:
    """Over the simulator on Modbus TCP as on the fake: both latches of the chain lock again at once, the cancel is
    recorded, and an opening of the drawer afterwards is tamper."""

    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            pull_id = await _pull_to_unlock(engine)
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            seq = last_seq(seeded)
            cancelled = await engine.execute(CancelPull(pull_id))
            assert cancelled.ok and cancelled.data["state"] == "cancelled", cancelled
            assert not cab.drawer_released(2) and not cab.lid_released(2, 1)
            assert state_of(engine, "D2") is CompartmentState.LOCKED
            assert state_of(engine, "D2-P01") is CompartmentState.LOCKED
            assert not engine.ctx.compartments["D2"].grants and not engine.ctx.compartments["D2-P01"].grants
            kinds = [json.loads(r.body)["details"].get("kind", r.event_type) for r in entries(seeded, seq)]
            assert "workflow.cancelled" in kinds
            cab.force_open(2)
            await engine.poll()
            tamper = [json.loads(r.body)["details"] for r in entries(seeded, seq) if r.event_type == "drawer.tamper"]
            assert [t["compartment_id"] for t in tamper] == ["D2"]
            assert stock(seeded)["D2-P01"] == 9 and chain_ok(seeded)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_hold_that_runs_out_unopened_ends_the_pull_failed(kind: str, seeded: Database, clock: FixedClock) -> None:
    """Nobody opens drawer 2 within the hold: the board relocks both latches itself, the pull ends failed with a
    ``workflow.cancelled`` entry (``not_opened_in_time``), nothing is removed, and no access is raised."""

    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = make_engine(seeded, cab.board, clock)
            await _ready(engine)
            pull_id = await _pull_to_unlock(engine)
            seq = last_seq(seeded)
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            if kind == "fake":
                cab.world.advance(31.0)
            else:
                cab.world.clock.advance(31.0)
            await engine.poll()
            assert not cab.drawer_released(2) and not cab.lid_released(2, 1)
            assert pull_state(engine, pull_id) == "failed"
            assert state_of(engine, "D2") is CompartmentState.LOCKED
            assert state_of(engine, "D2-P01") is CompartmentState.LOCKED
            new = [json.loads(r.body) for r in entries(seeded, seq)]
            ended = [e for e in new if e["event_type"] == "workflow.cancelled"]
            assert [(e["details"]["pull_id"], e["reason_code"]) for e in ended] == [(pull_id, "not_opened_in_time")]
            assert not [e for e in new if e["event_type"] in ("dose.removed", "discrepancy.raised", "drawer.tamper")]
            assert (await engine.execute(Take(pull_id, 1))).code == "engine.no_workflow"
            assert stock(seeded)["D2-P01"] == 9 and chain_ok(seeded)

    run(scenario())


def test_pulls_alive_at_once_are_for_one_patient(db: Database, clock: FixedClock) -> None:
    """Several pulls of one session may be alive, all for the same patient: a pull for another patient is refused
    (and nothing of it kept) until the first patient's pulls have ended."""
    raw = layout()
    raw["patient"].append({"mrn": "MRN2", "encounter": "ENC2", "family_name": "Roe", "given_name": "Al"})
    with db.write() as session:
        seed_cabinet(session, raw, load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=FAST_HASHER, clock=clock)  # fmt: skip

    async def scenario() -> None:
        async with open_cabinet("fake") as cab:
            engine = make_engine(db, cab.board, clock)
            await _ready(engine)
            first = await _pull_to_unlock(engine)
            second = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert {p["pull_id"] for p in engine.query(ListPulls()).unwrap().pulls} == {first, second}
            other = await engine.execute(StartPull("MRN2"))
            assert other.code == "workflow.one_patient_at_a_time", other
            assert len(engine.query(ListPulls()).unwrap().pulls) == 2
            assert (await engine.execute(CancelPull(first))).ok
            assert (await engine.execute(CancelPull(second))).ok
            assert not cab.drawer_released(2) and not cab.lid_released(2, 1)
            assert engine.query(ListPulls()).unwrap().pulls == ()
            assert (await engine.execute(StartPull("MRN2"))).ok
            again = await engine.execute(Take(first, 1))  # an ended pull takes no further step
            assert again.code == "engine.no_workflow", again

    run(scenario())
