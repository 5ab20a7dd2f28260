"""Every access to a pocket is accounted for: several pulls at once, cancel after unlock, an access never closed out
(logoff, restart), zero takes, openings only the board's counter saw, openings while the controller was down,
and the undocumented-access discrepancy that blocks a pocket until it is counted and resolved by two people."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from controller.bootstrap.cabinet import compose_cabinet
from controller.domain.clock import FixedClock
from controller.domain.machine_settings import FsmSettings
from controller.domain.policies import Policy
from controller.domain.rules_document import CabinetRules
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands.clinical import ListDiscrepancies, ResolveDiscrepancy, SignWitness
from controller.engine.commands.pharmacy import EnterPocketCount, StartCount
from controller.engine.commands.pull import CancelPull, EnterCount, SelectItem, StartPull, Take
from controller.engine.commands.session import Login, Logout
from controller.engine.context import Devices
from controller.fsm.workflows.count import CountKind
from controller.hardware.io_board.fake import FakeIoBoard
from controller.store.database import Database
from tests.engine.rig import BOARD_LAYOUT, CABINET, chain_ok, entries, ledger_stock_agrees, seed, stock
from tests.store.test_inventory import FAST_HASHER


def board(protocol_version: int = 2) -> FakeIoBoard:
    return FakeIoBoard(drawer_count=BOARD_LAYOUT.drawer_count, pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
                       lidded=BOARD_LAYOUT.lidded, protocol_version=protocol_version)  # fmt: skip


def engine_on(db: Database, clock: FixedClock, fake: FakeIoBoard) -> CabinetEngine:
    return compose_cabinet(db=db, cabinet_id=CABINET, clock=clock, hasher=FAST_HASHER, devices=Devices(board=fake),
                           is_simulator=True, rules=CabinetRules(Policy(), FsmSettings()))  # fmt: skip


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


async def logged_in(engine: CabinetEngine, user: str = "NURSE1", pin: str = "1111") -> None:
    assert (await engine.restore()).ok
    assert (await engine.execute(Login(user, pin=pin))).ok


async def morphine_unlocked(engine: CabinetEngine) -> str:
    """A schedule II pull of D2-P01 (lidded, drawer 2) up to its unlock; returns the pull id."""
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok
    unlocked = await engine.execute(EnterCount(pull_id, 9))
    assert unlocked.ok, unlocked
    return pull_id


def kinds(db: Database, after: int = 0) -> list[str]:
    return [json.loads(r.body)["details"].get("kind", r.event_type) for r in entries(db, after)]


def open_discrepancies(engine: CabinetEngine) -> list[Any]:
    return [d for d in engine.query(ListDiscrepancies()).unwrap().discrepancies if d["state"] in ("open", "escalated")]


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


# --- the four defects ---------------------------------------------------------------------------------------------


def test_a_second_pull_does_not_orphan_the_first(seeded: Database, clock: FixedClock) -> None:
    """Defect 1: the second pull for the same patient, while the first's drawer is open, leaves the first's
    closing and removal on the record."""

    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        first = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        assert (await engine.execute(SelectItem(first, order_id="ORD2"))).ok  # heparin: matrix drawer 1
        fake.open_drawer(1)
        await engine.poll()
        second = await morphine_unlocked(engine)
        assert first != second
        assert (await engine.execute(Take(first, 1))).ok
        fake.close_drawer(1)
        await engine.poll()
        removed = [r for r in entries(seeded) if r.event_type == "dose.removed"]
        assert [(r.pocket_id, json.loads(r.body)["details"]["pull_id"]) for r in removed] == [("D1-P01", first)]
        assert ledger_stock_agrees(seeded) and chain_ok(seeded)

    run(body)


def test_cancel_after_unlock_relocks_and_is_recorded_and_a_later_opening_is_tamper(
    seeded: Database, clock: FixedClock
) -> None:
    """Defect 2."""

    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = await morphine_unlocked(engine)
        assert fake.drawers[2].released and fake.lids[2, 1].released
        cancelled = await engine.execute(CancelPull(pull_id))
        assert cancelled.ok and cancelled.data["state"] == "cancelled", cancelled
        assert not fake.drawers[2].released and not fake.lids[2, 1].released
        assert "workflow.cancelled" in kinds(seeded)
        fake.stick_sensor(2, "open", True)  # someone pries the drawer after the cancel
        fake.stick_sensor(2, "closed", False)
        await engine.poll()
        assert kinds(seeded)[-1] == "drawer.tamper"

    run(body)


def test_opened_closed_without_a_take_then_logout_is_an_undocumented_access(
    seeded: Database, clock: FixedClock
) -> None:
    """Defect 3: logout with a pull closed but never said what was taken raises a discrepancy naming the pocket,
    the user and the pull; the pocket is blocked until counted; a take of zero is valid."""

    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = await morphine_unlocked(engine)
        fake.open_drawer(2)
        await engine.poll()
        fake.lift_lid(2, 1)
        await engine.poll()
        fake.close_lid(2, 1)
        fake.close_drawer(2)
        await engine.poll()
        assert (await engine.execute(Logout())).ok
        (raised,) = open_discrepancies(engine)
        assert raised["kind"] == "undocumented_access" and raised["pocket_id"] == "D2-P01"
        assert raised["workflow_id"] == pull_id and raised["raised_by"] == "NURSE1"
        assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
        again = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        blocked = await engine.execute(SelectItem(again, order_id="ORD1"))
        assert blocked.code == "workflow.undocumented_access", blocked

    run(body)


def test_a_take_of_zero_is_recorded(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = await morphine_unlocked(engine)
        fake.open_drawer(2)
        await engine.poll()
        fake.lift_lid(2, 1)
        await engine.poll()
        assert (await engine.execute(Take(pull_id, 0))).ok
        fake.close_lid(2, 1)
        await engine.poll()
        removed = [r for r in entries(seeded) if r.event_type == "dose.removed"]
        assert len(removed) == 1 and json.loads(removed[0].body)["quantity_actual"] == 0
        assert stock(seeded)["D2-P01"] == 9

    run(body)


# --- openings only the counter saw --------------------------------------------------------------------------------


def test_an_opening_between_two_polls_is_recorded_from_the_counter(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        assert (await engine.execute(SelectItem(pull_id, order_id="ORD2"))).ok  # matrix drawer 1
        fake.open_drawer(1)
        fake.close_drawer(1)  # no poll in between: the latch caught as it closed
        await engine.poll()  # a counted opening of a shut drawer waits for the next read, which may show it open
        assert engine.query(_get(pull_id)).data["state"] == "unlocking"
        await engine.poll()  # still shut: it was opened and shut between two reads
        opened = [json.loads(r.body)["details"] for r in entries(seeded) if r.event_type == "drawer.opened"]
        assert opened and opened[-1]["seen_by"] == "counter"
        assert engine.query(_get(pull_id)).data["state"] == "closed_unaccounted"
        assert (await engine.execute(Take(pull_id, 1))).ok
        assert stock(seeded)["D1-P01"] == 4 and ledger_stock_agrees(seeded)

    run(body)


def test_an_opening_while_nobody_held_a_grant_is_tamper(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        assert (await engine.restore()).ok
        fake.preset_openings(1, 1, seen=0)  # drawer 1 opened and shut, latched: only the counter knows
        await engine.poll()
        await engine.poll()  # the second read confirms it (the first may have raced the opening)
        assert kinds(seeded)[-1] == "drawer.tamper"
        assert "D1" in engine.ctx.compartments.unaccounted()

    run(body)


# --- restarts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol_version", [1, 2])
def test_killed_after_the_hand_before_the_record(seeded: Database, clock: FixedClock, protocol_version: int) -> None:
    """Defect 4: the controller dies after the nurse took the dose and closed the drawer, before the take was
    recorded. On restart the journal says the pocket was unlocked for a pull: an undocumented access that blocks
    it until it is counted (blind) and resolved by two people."""

    async def body() -> None:
        fake = board(protocol_version)
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        await morphine_unlocked(engine)
        fake.open_drawer(2)
        fake.lift_lid(2, 1)
        fake.close_lid(2, 1)
        fake.close_drawer(2)  # the nurse's hands; the controller saw none of it
        restarted = engine_on(seeded, clock, fake)
        assert (await restarted.restore()).ok
        (raised,) = open_discrepancies(restarted)
        assert raised["kind"] == "undocumented_access" and raised["pocket_id"] == "D2-P01"
        # Count it blind (a pharmacist), then resolve it with a witness.
        assert (await restarted.execute(Login("PHARM1", pin="3333"))).ok
        count = await restarted.execute(StartCount(CountKind.CYCLE, ("D2-P01",)))
        assert count.ok, count
        count_id = count.unwrap().count_id
        fake.open_drawer(2)
        await restarted.poll()
        fake.lift_lid(2, 1)
        await restarted.poll()
        counted = await restarted.execute(EnterPocketCount(count_id, "D2-P01", 8))
        assert counted.ok, counted
        fake.close_lid(2, 1)
        fake.close_drawer(2)
        await restarted.poll()
        resolving = await restarted.execute(ResolveDiscrepancy(raised["discrepancy_id"], "undocumented_removal"))
        assert resolving.ok and resolving.data["state"] == "awaiting_witness", resolving
        assert (await restarted.execute(SignWitness("NURSE1", pin="1111"))).ok
        mismatch = [d for d in open_discrepancies(restarted) if d["kind"] == "count_mismatch"]
        assert [d["pocket_id"] for d in mismatch] == ["D2-P01"]  # the missing unit stays on the record
        assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(body)


def test_resolving_an_undocumented_access_needs_a_count_first(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        await morphine_unlocked(engine)
        fake.open_drawer(2)
        await engine.poll()
        fake.lift_lid(2, 1)
        await engine.poll()
        assert (await engine.execute(Logout())).ok  # the lid still up: the grant dies, the access is open
        (raised,) = open_discrepancies(engine)
        assert (await engine.execute(Login("PHARM1", pin="3333"))).ok
        refused = await engine.execute(ResolveDiscrepancy(raised["discrepancy_id"], "miscount_current"))
        assert refused.code == "workflow.count_required", refused
        fake.close_lid(2, 1)
        fake.close_drawer(2)
        await engine.poll()
        assert engine.ctx.compartments["D2-P01"].state.value == "locked"  # shut after its grant died: it latches

    run(body)


def test_a_pull_not_yet_unlocked_at_a_restart_ends_cancelled(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok  # blind count: nothing unlocked
        restarted = engine_on(seeded, clock, fake)
        assert (await restarted.restore()).ok
        assert kinds(seeded)[-1] == "workflow.cancelled"
        assert not open_discrepancies(restarted)

    run(body)


def test_an_unlocked_pocket_a_version_2_board_shows_unopened_ends_cancelled(
    seeded: Database, clock: FixedClock
) -> None:
    async def body() -> None:
        fake = board(2)
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        await morphine_unlocked(engine)
        restarted = engine_on(seeded, clock, fake)  # killed while unlocked; nobody touched the drawer
        assert (await restarted.restore()).ok
        assert not open_discrepancies(restarted)
        assert "workflow.cancelled" in kinds(seeded)

    run(body)


def test_a_version_1_board_cannot_tell_so_an_unlocked_pocket_is_an_undocumented_access(
    seeded: Database, clock: FixedClock
) -> None:
    async def body() -> None:
        fake = board(1)
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        await morphine_unlocked(engine)
        restarted = engine_on(seeded, clock, fake)
        assert (await restarted.restore()).ok
        (raised,) = open_discrepancies(restarted)
        assert raised["kind"] == "undocumented_access"

    run(body)


def test_an_opening_while_the_controller_was_down_is_tamper_on_restart(seeded: Database, clock: FixedClock) -> None:
    async def body() -> None:
        fake = board(2)
        engine = engine_on(seeded, clock, fake)
        assert (await engine.restore()).ok
        await engine.poll()
        fake.stick_sensor(1, "open", True)  # pried open and pushed shut while the controller was down
        fake.stick_sensor(1, "closed", False)
        fake.unstick_sensors(1)
        restarted = engine_on(seeded, clock, fake)
        assert (await restarted.restore()).ok
        tamper = [json.loads(r.body)["details"] for r in entries(seeded) if r.event_type == "drawer.tamper"]
        assert tamper and tamper[-1]["seen_by"] == "counter_while_down"
        assert "D1" in restarted.ctx.compartments.unaccounted()

    run(body)


def _get(pull_id: str) -> Any:
    from controller.engine.commands.pull import GetPull

    return GetPull(pull_id)


def test_an_opening_between_the_sensor_and_the_counter_reads_is_an_ordinary_opening(
    seeded: Database, clock: FixedClock
) -> None:
    """A snapshot reads the sensors, then the counters: a drawer opened between the two reads shows as counted
    but shut. The next read shows it open, so it is the pull's ordinary opening, not one opened and shut unseen
    (which would leave the pull closed without a take while the nurse stands at the open drawer)."""

    async def body() -> None:
        fake = board()
        engine = engine_on(seeded, clock, fake)
        await logged_in(engine)
        pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        assert (await engine.execute(SelectItem(pull_id, order_id="ORD2"))).ok  # matrix drawer 1
        fake.open_drawer(1)
        read = await fake.snapshot()
        shut = dataclasses.replace(read.drawers[0], open_sensor=False, closed_sensor=True)
        await engine.handle_snapshot(dataclasses.replace(read, drawers=(shut, *read.drawers[1:])))
        assert engine.query(_get(pull_id)).data["state"] == "unlocking"
        await engine.poll()
        assert engine.query(_get(pull_id)).data["state"] == "open"
        opened = [json.loads(r.body)["details"] for r in entries(seeded) if r.event_type == "drawer.opened"]
        assert len(opened) == 1 and "seen_by" not in opened[0]
        assert not [r for r in entries(seeded) if r.event_type in ("drawer.closed", "drawer.tamper")]

    run(body)
