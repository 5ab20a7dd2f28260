"""The cabinet's running loop against the I/O board simulator over Modbus TCP, the physical world acted on through
the simulator's control surface (JSON lines over a socket): no test here calls ``poll()`` or ``Tick``. A drawer
pried open with nobody logged in becomes a tamper entry; a whole pull is followed from the sensors; the left-open
alarm and the inactivity logoff fire from the loop's tick on a manual clock; a refrigerator excursion longer than
the limit quarantines its contents; a watchdog expiry is recorded and acknowledged; failed reads are counted and
the loop goes on; a board silent at start-up is restored and armed once it answers; stopping leaves no task
behind and the board as it was."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from controller.bootstrap.cabinet import build_runner
from controller.domain.clock import FixedClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import GetPull, Login, ReportBoardFaults, SelectItem, StartPull, Take
from controller.engine.commands.cabinet import FaultsReported
from controller.engine.runner import CabinetRunner
from controller.fsm.compartment import CompartmentState
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.io_board.fake import FakeIoBoard
from controller.hardware.tasks import cancel_and_wait
from controller.settings import Settings
from controller.store import engine_state
from controller.store.database import Database
from simulators import io_board as io_board_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.io_board.model import IoBoardModel
from tests.engine import pharmacy_rig
from tests.engine.rig import BOARD_LAYOUT, chain_ok, entries, last_seq, ledger_stock_agrees, make_engine, stock
from tests.hardware.io_board.rigs import run


def fast(engine: CabinetEngine) -> CabinetRunner:
    """Poll at 50 Hz and tick every 50 ms of real time: the tests wait for the loop, never drive it."""
    return CabinetRunner(engine, poll_period_s=0.02, tick_period_s=0.05)


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    pharmacy_rig.seed(db, clock)  # the engine rig's cabinet with a refrigerator drawer (board drawer 3)
    return db


@dataclass
class Station:
    engine: CabinetEngine
    board: IoBoardDriver
    model: IoBoardModel  # for assertions on the board's state; actions go through ``act``
    sim_clock: ManualClock
    faults: FaultPlan
    control_port: int

    async def act(self, action: str, **args: Any) -> Any:
        """A person or physics acting on the cabinet, through the simulator's control socket."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        try:
            writer.write(json.dumps({"device": "io_board", "action": action, "args": args}).encode() + b"\n")
            await writer.drain()
            answer = json.loads(await reader.readline())
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer["ok"], answer
        return answer["result"]


@asynccontextmanager
async def station(db: Database, clock: FixedClock, *, timeout: float = 0.5) -> AsyncIterator[Station]:
    control, faults, sim_clock = ControlSurface(), FaultPlan(), ManualClock(1000.0)
    sim = await io_board_sim.start(control=control, clock=sim_clock, faults=faults, layout=BOARD_LAYOUT)
    port = await control.serve()
    try:
        board = await IoBoardDriver.connect(sim.url, timeout=timeout)
        try:
            yield Station(make_engine(db, board, clock), board, sim.model, sim_clock, faults, port)
        finally:
            await board.close()
    finally:
        await control.close()
        await sim.close()


async def eventually(what: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Wait until the loop has made ``what`` true (it runs on its own; nothing here drives it)."""
    async with asyncio.timeout(timeout):
        while not (value := what()):
            await asyncio.sleep(0.01)
    return value


def kinds(db: Database, after: int = 0) -> list[tuple[str, str | None, str | None]]:
    rows = [json.loads(r.body) for r in entries(db, after)]
    return [(b["event_type"], b["details"].get("kind"), b.get("reason_code")) for b in rows]


def has(db: Database, after: int, event_type: str, reason: str | None = None) -> bool:
    return any(k[0] == event_type and (reason is None or k[2] == reason) for k in kinds(db, after))


def pull_state(engine: CabinetEngine, pull_id: str) -> str:
    return str(engine.query(GetPull(pull_id)).unwrap().state)


async def heparin_unlocked(engine: CabinetEngine) -> str:
    """NURSE1 (logged in) starts a heparin pull from matrix drawer D1 up to its unlock; the pull id."""
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    chosen = await engine.execute(SelectItem(pull_id, order_id="ORD2"))
    assert chosen.ok, chosen
    return pull_id


def test_drawer_pried_open_with_nobody_logged_in_is_tamper(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock) as st, fast(st.engine) as runner:
            assert runner.health.restored is not None and runner.health.restored.ok
            await eventually(lambda: runner.health.snapshots > 0)
            start = last_seq(seeded)
            assert not st.engine.ctx.session.is_active
            # the latch never released: the sensors say open all the same
            await st.act("stick_sensor", drawer=1, sensor="open", value=True)
            await st.act("stick_sensor", drawer=1, sensor="closed", value=False)
            await eventually(lambda: has(seeded, start, "drawer.tamper"))
            [tamper] = [json.loads(r.body) for r in entries(seeded, start) if r.event_type == "drawer.tamper"]
            assert tamper["actor_id"] is None and tamper["details"]["compartment_id"] == "D1"
            assert tamper["reason_code"] == "opened_without_unlock"
            assert st.engine.ctx.compartments["D1"].state is CompartmentState.BREACHED
            assert runner.health.bugs == 0 and runner.health.poll_failures == 0
            assert chain_ok(seeded)

    run(scenario())


def test_a_pull_followed_by_the_loop_with_left_open_alarm_and_inactivity_logoff(
    seeded: Database, clock: FixedClock
) -> None:
    async def scenario() -> None:
        async with station(seeded, clock) as st, fast(st.engine) as runner:
            e = st.engine
            start = last_seq(seeded)
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await heparin_unlocked(e)  # heparin, matrix drawer D1
            assert st.model.drawers[1].released
            # snapshots read before the unlock reach the engine after it: they must not relock it in its books
            await asyncio.sleep(0.1)
            assert e.ctx.compartments["D1"].state is CompartmentState.UNLOCKED, runner.health
            await st.act("open_drawer", drawer=1)
            await eventually(lambda: pull_state(e, pull_id) == "open")
            assert (await e.execute(Take(pull_id, 1))).ok
            # left open past the limit (30 s): the alarm comes from the loop's tick
            clock.advance(timedelta(seconds=31))
            await eventually(lambda: has(seeded, start, "drawer.left_open", "left_open"))
            assert e.ctx.session.is_active  # 31 s since the last command: not yet logged off
            await st.act("close_drawer", drawer=1)
            await eventually(lambda: e.ctx.compartments["D1"].state is CompartmentState.LOCKED)
            assert pull_state(e, pull_id) == "done"
            assert stock(seeded)["D1-P01"] == 4
            # nobody touches the screen for 60 s: logged off by the tick
            clock.advance(timedelta(seconds=30))
            await eventually(lambda: has(seeded, start, "session.logout", "inactivity"))
            assert not e.ctx.session.is_active
            assert [k[0] for k in kinds(seeded, start)].count("drawer.left_open") == 1
            assert runner.health.ticks > 0 and runner.health.bugs == 0
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_fridge_excursion_past_the_limit_quarantines_from_the_loop(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock) as st, fast(st.engine) as runner:
            start = last_seq(seeded)
            await eventually(lambda: runner.health.last_environment is not None)
            await st.act("set_fridge_temperature", celsius=11.5)

            def excursion_seen() -> bool:
                checked = runner.health.last_environment
                return checked is not None and bool(checked.data.get("excursion"))

            await eventually(excursion_seen)
            clock.advance(timedelta(minutes=29))
            await asyncio.sleep(0.2)  # several ticks: still inside the limit
            assert not has(seeded, start, "stock.quarantined")
            clock.advance(timedelta(minutes=2))
            await eventually(lambda: has(seeded, start, "stock.quarantined", "temperature_excursion"))
            got = [(k[0], k[2]) for k in kinds(seeded, start)]
            assert got == [
                ("environment.temperature_excursion", "fridge_out_of_range"),
                ("stock.quarantined", "temperature_excursion"),
            ]
            with seeded.read() as session:
                assert engine_state.usable_lots(session, "D3-P01", clock.now().date()) == []
            await asyncio.sleep(0.2)
            assert len(entries(seeded, start)) == 2  # once per excursion, however many ticks

    run(scenario())


def test_watchdog_expiry_is_recorded_acknowledged_and_the_unlock_undone(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock) as st, fast(st.engine) as runner:
            e = st.engine
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await heparin_unlocked(e)
            assert st.model.drawers[1].released
            start = last_seq(seeded)
            # the controller stalls for longer than the watchdog timeout (2 s) on the board's clock
            st.sim_clock.advance(5.0)
            await eventually(lambda: has(seeded, start, "device.fault", "watchdog_expired"))
            assert not st.model.drawers[1].released  # the board relocked it
            await eventually(lambda: not st.model.watchdog_expired)  # acknowledged after it was recorded
            await eventually(lambda: e.ctx.compartments["D1"].state is CompartmentState.LOCKED)
            assert pull_state(e, pull_id) == "failed"  # nothing was removed
            # the runner counts the fault once the command that recorded and acknowledged it has returned
            await eventually(lambda: runner.health.board_faults == ["watchdog_expired"])
            assert runner.heartbeat.healthy
            # and the cabinet can unlock again
            again = (await e.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await e.execute(SelectItem(again, order_id="ORD2"))).ok
            assert st.model.drawers[1].released
            assert stock(seeded)["D1-P01"] == 5 and chain_ok(seeded)

    run(scenario())


def test_failed_reads_are_counted_and_the_loop_goes_on(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock, timeout=0.1) as st, fast(st.engine) as runner:
            await eventually(lambda: runner.health.snapshots > 0)
            st.faults.add(Fault(FaultKind.DROP_RESPONSE, times=0))  # the board stops answering
            await eventually(lambda: runner.health.poll_failures > 0)
            assert runner.health.last_poll_error is not None
            assert runner.health.last_poll_error.code == "comm.timeout"
            st.faults.clear()
            applied = runner.health.snapshots
            await eventually(lambda: runner.health.snapshots > applied)
            assert runner.running
            start = last_seq(seeded)
            await st.act("stick_sensor", drawer=1, sensor="open", value=True)
            await st.act("stick_sensor", drawer=1, sensor="closed", value=False)
            await eventually(lambda: has(seeded, start, "drawer.tamper"))
            assert runner.health.bugs == 0

    run(scenario())


def test_a_board_silent_at_start_up_is_restored_and_armed_once_it_answers(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock, timeout=0.1) as st:
            st.faults.add(Fault(FaultKind.DROP_RESPONSE, times=0))
            async with fast(st.engine) as runner:
                assert runner.health.restored is not None
                assert runner.health.restored.code == "comm.timeout"
                assert st.engine.ctx.compartments["D1"].state is CompartmentState.UNKNOWN  # every unlock waits for it
                assert not runner.heartbeat.healthy and not st.model.watchdog_armed
                st.faults.clear()
                await eventually(lambda: st.engine.ctx.compartments["D1"].state is CompartmentState.LOCKED)
                assert runner.health.restored.ok
                await eventually(lambda: runner.heartbeat.healthy and st.model.watchdog_armed)
                assert runner.health.bugs == 0

    run(scenario())


def test_stopping_leaves_no_tasks_and_the_board_as_it_was(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with station(seeded, clock) as st:
            e = st.engine
            before = asyncio.all_tasks()
            runner = build_runner(Settings(io_poll_hz=50.0), e, tick_period_s=0.05)  # as the cabinet builds it
            assert runner.poller.period_s == pytest.approx(0.02)
            await runner.start()
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            await heparin_unlocked(e)
            await eventually(lambda: runner.health.ticks >= 2)
            started = asyncio.all_tasks() - before
            names = {t.get_name() for t in started}
            assert names == {"heartbeat", "poller:io_board", "cabinet:CAB-E:snapshots", "cabinet:CAB-E:tick"}
            await runner.stop()
            assert not runner.running
            assert asyncio.all_tasks() - before == set()
            assert all(t.done() for t in started)
            # stopping sent nothing to the board: the drawer is still unlocked ...
            assert st.model.drawers[1].released and st.model.drawers[1].command == 1
            requests = st.model.request_count
            await asyncio.sleep(0.1)
            assert st.model.request_count == requests  # ... and nothing polls or beats any more
            # the board's own watchdog relocks it once the heartbeats have stopped
            st.sim_clock.advance(3.0)
            assert not (await st.board.drawer_state(1)).lock_released

    run(scenario())


def test_a_task_that_swallows_one_cancellation_is_still_stopped() -> None:
    """Python 3.11's ``asyncio.wait_for`` (inside pymodbus) drops a cancellation that lands as the answer arrives;
    the heartbeat then beat on and ``stop()`` hung. Stopping cancels until the task is really done."""

    async def swallows_once() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as wait_for does when its future completed just then
            await asyncio.sleep(10)
        await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.create_task(swallows_once())
        await asyncio.sleep(0)
        async with asyncio.timeout(1.0):
            await cancel_and_wait(task)
        assert task.cancelled()

    run(scenario())


# --- board faults -------------------------------------------------------------------------------------------------


def test_a_board_reboot_is_recorded_once_acknowledged_and_its_watchdog_timeout_restored(
    seeded: Database, clock: FixedClock
) -> None:
    """The board restarts under a running cabinet: one ``device.fault`` entry however many snapshots show the
    bit, the bit acknowledged on the board once recorded, and the watchdog timeout the reboot reset set again."""

    async def scenario() -> None:
        async with station(seeded, clock) as st:
            runner = CabinetRunner(st.engine, poll_period_s=0.02, tick_period_s=0.05, watchdog_timeout_ms=3000)
            async with runner:
                await eventually(lambda: runner.health.snapshots > 0 and st.model.watchdog_timeout_ms == 3000)
                start = last_seq(seeded)
                await st.act("reboot")
                await eventually(lambda: has(seeded, start, "device.fault", "rebooted"))
                await eventually(lambda: not st.model.rebooted)  # acknowledged after it was recorded
                await eventually(lambda: st.model.watchdog_timeout_ms == 3000)
                applied = runner.health.snapshots
                await eventually(lambda: runner.health.snapshots > applied + 5)
                faults = [k for k in kinds(seeded, start) if k[0] == "device.fault"]
                assert faults == [("device.fault", "board.fault", "rebooted")]
                assert runner.health.board_faults == ["rebooted"] and runner.health.bugs == 0

    run(scenario())


def test_board_faults_reported_are_recorded_once_and_the_event_bits_acknowledged(
    db: Database, clock: FixedClock
) -> None:
    """``ReportBoardFaults`` as the runner sends it: a bit is recorded when it rises, not again while it stays up,
    again after it fell and rose; the bits that only report an event are acknowledged on the board once recorded
    (retried with the next report when the board does not answer); a blocking bit is recorded and left for service."""

    async def scenario() -> None:
        pharmacy_rig.seed(db, clock)
        fake = FakeIoBoard(drawer_count=BOARD_LAYOUT.drawer_count, pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
                           lidded=BOARD_LAYOUT.lidded)  # fmt: skip
        engine = make_engine(db, fake, clock)
        assert (await engine.restore()).ok
        start = last_seq(db)

        async def report(*, link_lost: bool = False) -> FaultsReported:
            snapshot = await fake.snapshot()
            state = {"faults": sorted(snapshot.faults), "heartbeat": snapshot.heartbeat}
            if link_lost:
                fake.lose_link(requests=1)  # the next request after the read, the acknowledgement, is lost
            reported = await engine.execute(ReportBoardFaults(snapshot.faults, state))  # no session needed
            assert reported.ok, reported
            return reported.unwrap()

        fake.latched.add("watchdog_expired")
        first = await report()
        assert (first.recorded, first.acknowledged) == (("watchdog_expired",), ("watchdog_expired",))
        assert "watchdog_expired" not in fake.latched  # acknowledged on the board
        assert (await report()).recorded == ()
        fake.short_circuit()  # over_current: recorded, not acknowledged (it blocks until serviced)
        fake.set_supply_voltage(18.0)  # low_voltage: a condition, not an event
        tripped = await report()
        assert (tripped.recorded, tripped.acknowledged) == (("low_voltage", "over_current"), ())
        assert (await report()).recorded == ()  # still up: not recorded again
        assert "over_current" in fake.latched
        fake.latched.add("rebooted")
        lost = await report(link_lost=True)
        assert (lost.recorded, lost.acknowledged) == (("rebooted",), ())
        retried = await report()  # recorded already; acknowledged now
        assert (retried.recorded, retried.acknowledged) == ((), ("rebooted",))
        assert "rebooted" not in fake.latched
        fake.latched.add("watchdog_expired")  # fell, and rises again: a new event
        assert (await report()).recorded == ("watchdog_expired",)
        got = [json.loads(r.body) for r in entries(db, start)]
        assert [(b["event_type"], b["reason_code"]) for b in got] == [
            ("device.fault", "watchdog_expired"),
            ("device.fault", "low_voltage"),
            ("device.fault", "over_current"),
            ("device.fault", "rebooted"),
            ("device.fault", "watchdog_expired"),
        ]
        assert all(b["details"]["kind"] == "board.fault" and b["actor_id"] is None for b in got)
        assert got[1]["device_state"]["faults"] == ["low_voltage", "over_current"]
        assert chain_ok(db)

    run(scenario())
