"""The poller (>= 10 Hz snapshots, typed failures, never dies) and the heartbeat task (keeps the watchdog fed)."""

from __future__ import annotations

import asyncio

from controller.hardware.heartbeat import Heartbeat
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.io_board.fake import FakeIoBoard
from controller.hardware.io_board.interface import BoardSnapshot
from controller.hardware.poller import BoardPoller, PollFailure, PollSuccess
from simulators import io_board as io_board_sim
from simulators.common.clock import RealClock
from simulators.common.control import ControlSurface
from tests.hardware.io_board.rigs import LAYOUT, open_rig, run


def test_poller_publishes_at_10_hz_from_the_simulator() -> None:
    async def go() -> None:
        async with open_rig("tcp") as rig, BoardPoller(rig.board, period_s=0.05) as poller:
            results: list[object] = []
            async with poller.subscribe() as next_result:
                while len(results) < 6:
                    results.append(await next_result())
            assert all(isinstance(r, PollSuccess) for r in results)
            first, last = results[0], results[-1]
            assert isinstance(last, PollSuccess) and isinstance(last.snapshot, BoardSnapshot)
            rate = (last.sequence - first.sequence) / (last.at - first.at)
            assert rate >= 10
            await rig.board.ensure_unlocked(1, 5)
            rig.open_drawer(1)
            async with poller.subscribe() as next_result:
                while True:
                    result = await next_result()
                    if isinstance(result, PollSuccess) and result.snapshot.drawer(1).is_open:
                        break

    run(go())


def test_poller_reports_a_lost_link_and_recovers_without_dying() -> None:
    async def go() -> None:
        fake = FakeIoBoard(drawer_count=2)
        async with BoardPoller(fake, period_s=0.01) as poller, poller.subscribe() as next_result:
            assert isinstance(await next_result(), PollSuccess)
            fake.lose_link(3, "comm.disconnected")
            failures = []
            while True:
                result = await next_result()
                if isinstance(result, PollFailure):
                    failures.append(result)
                elif failures:
                    assert result.recovered
                    break
            assert failures[-1].error.code == "comm.disconnected"
            assert failures[-1].since == failures[0].at and failures[-1].consecutive == len(failures)
            assert poller.running

    run(go())


def test_poller_survives_a_buggy_source() -> None:
    class Broken:
        calls = 0

        async def snapshot(self) -> int:
            self.calls += 1
            if self.calls % 2:
                raise RuntimeError("driver bug")
            return self.calls

    async def go() -> None:
        async with BoardPoller(Broken(), period_s=0.01) as poller, poller.subscribe() as next_result:
            seen = {type(await next_result()) for _ in range(4)}
            assert seen == {PollSuccess, PollFailure}
            assert isinstance(poller.latest, (PollSuccess, PollFailure))

    run(go())


def test_poller_stop_leaves_no_task() -> None:
    async def go() -> None:
        poller = BoardPoller(FakeIoBoard(), period_s=0.01)
        async with poller:
            await asyncio.sleep(0.03)
        assert not poller.running
        assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()

    run(go())


def test_heartbeat_keeps_the_simulated_board_unlocked_and_stopping_it_relocks() -> None:
    async def go() -> None:
        sim = await io_board_sim.start(control=ControlSurface(), clock=RealClock(), layout=LAYOUT)
        try:
            async with await IoBoardDriver.connect(sim.url) as board:
                async with Heartbeat(board, watchdog_timeout_ms=300) as heartbeat:
                    await board.ensure_unlocked(1, 60)
                    await asyncio.sleep(0.7)  # more than two watchdog periods
                    assert (await board.drawer_state(1)).lock_released
                    assert heartbeat.healthy and heartbeat.beats >= 5
                await asyncio.sleep(0.45)  # no more heartbeats
                snapshot = await board.snapshot()
                assert "watchdog_expired" in snapshot.faults
                assert not snapshot.drawer(1).lock_released
        finally:
            await sim.close()

    run(go())


def test_heartbeat_records_failures_and_keeps_beating() -> None:
    async def go() -> None:
        fake = FakeIoBoard()
        async with Heartbeat(fake, watchdog_timeout_ms=200, period_s=0.01) as heartbeat:
            fake.lose_link(2)
            await asyncio.sleep(0.08)
            assert heartbeat.failures == 2 and heartbeat.last_error is not None
            assert heartbeat.healthy
            assert fake.heartbeat_value == heartbeat.value

    run(go())
