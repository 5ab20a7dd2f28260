"""The running loop of one cabinet: what turns an engine that answers commands into a cabinet that watches itself.

Responsible for: ``engine.restore()`` first (the compartments rebuilt from the sensors before anything else),
then, side by side until stopped: the watchdog heartbeat (``Heartbeat``); the sensor poller (``BoardPoller``),
every snapshot of which goes to ``engine.handle_snapshot`` (a tamper, a close or a latch is seen without anyone
calling ``poll()``) and whose fault bits are reported (``ReportBoardFaults``: a rising bit is a ledger entry; the
two that only say "it happened" are acknowledged on the board once recorded); and a periodic ``Tick``
(inactivity logoff, left-open alarm, escalations, shift end) followed by the refrigerator check
(``CheckRefrigerator``) on the latest snapshot's environment block. Everything that records or moves a latch goes
through the engine, under its lock. Device errors never stop it: a failed read is counted and logged and the next
one is tried.

Not responsible for: any rule (the engine and its machines decide), choosing the board (``controller.bootstrap``),
or locking anything on the way out: stopping cancels the tasks and leaves the board as it is (its watchdog relocks
whatever is still released once the heartbeats stop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.engine.commands.cabinet import ReportBoardFaults
from controller.engine.commands.pharmacy import CheckRefrigerator
from controller.engine.commands.session import Tick
from controller.engine.results import CommandResult
from controller.errors import ControllerError
from controller.fsm.compartment import CompartmentState
from controller.hardware.heartbeat import Heartbeat
from controller.hardware.io_board.interface import BoardSnapshot, EnvironmentReading
from controller.hardware.poller import BoardPoller, PollFailure, PollSuccess
from controller.hardware.tasks import cancel_and_wait

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StampedSnapshot:
    """A snapshot with the engine's actuation count from just before it was read."""

    actuations: int
    snapshot: BoardSnapshot


class _StampedSource:
    """The board as the poller's source. The stamp lets the engine drop a read that started before one of its own
    unlocks or relocks: applied afterwards, its stale "latched" would undo the unlock."""

    def __init__(self, engine: CabinetEngine) -> None:
        self._engine = engine

    async def snapshot(self) -> StampedSnapshot:
        actuations = self._engine.actuations
        return StampedSnapshot(actuations, await self._engine.ctx.devices.board.snapshot())


@dataclass
class RunnerHealth:
    """What the loop has seen, for status pages and tests."""

    restored: CommandResult[Any] | None = None
    snapshots: int = 0  # applied to the engine
    stale: int = 0  # read before the engine's own last actuation: dropped
    poll_failures: int = 0
    last_poll_error: ControllerError | None = None
    refusals: int = 0  # snapshots the engine could not fully record (e.g. the store refused a removal)
    last_refusal: CommandResult[Any] | None = None
    ticks: int = 0
    last_tick: CommandResult[Any] | None = None
    last_environment: CommandResult[Any] | None = None
    board_faults: list[str] = field(default_factory=list)  # every fault bit seen rising, in order
    bugs: int = 0  # exceptions out of the engine: logged, and the loop goes on


class CabinetRunner:
    """``async with CabinetRunner(engine):`` the cabinet runs; leaving the block stops every task it started."""

    def __init__(
        self,
        engine: CabinetEngine,
        *,
        poll_period_s: float = 0.1,
        tick_period_s: float = 1.0,
        watchdog_timeout_ms: int = 2000,
        heartbeat_period_s: float | None = None,
    ) -> None:
        if tick_period_s <= 0:
            raise ValueError("the tick period must be positive")
        self.engine = engine
        self.tick_period_s = tick_period_s
        io_timeout_s = engine.ctx.actuator.io_timeout_s
        self.poller: BoardPoller[StampedSnapshot] = BoardPoller(
            _StampedSource(engine), period_s=poll_period_s, read_timeout_s=io_timeout_s
        )
        self.heartbeat = Heartbeat(
            engine.ctx.devices.board, watchdog_timeout_ms=watchdog_timeout_ms, period_s=heartbeat_period_s
        )
        self.health = RunnerHealth()
        self._heartbeat_started = False
        self._tasks: list[asyncio.Task[None]] = []  # flat, no nesting: each is cancelled and awaited on its own
        self._environment: EnvironmentReading | None = None  # from the latest snapshot not yet checked

    async def __aenter__(self) -> CabinetRunner:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def start(self) -> None:
        """Restore from the sensors, arm the watchdog, then start polling and ticking."""
        if self._tasks:
            return
        self.health.restored = await self.engine.restore()
        if not self.health.restored.ok:
            log.warning("restore failed (%s); retried on the first good snapshot", self.health.restored.code)
        await self._start_heartbeat()
        self.poller.start()
        name = f"cabinet:{self.engine.cabinet_id}"
        self._tasks = [
            asyncio.create_task(self._feed(), name=f"{name}:snapshots"),
            asyncio.create_task(self._tick_every_period(), name=f"{name}:tick"),
        ]

    async def stop(self) -> None:
        """Cancel every task and wait for each; nothing is sent to the board."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)
        await self.poller.stop()
        await self.heartbeat.stop()
        self._heartbeat_started = False

    async def tick(self) -> None:
        """One round of the time rules and the refrigerator check (the loop calls it every ``tick_period_s``)."""
        if not self._heartbeat_started:
            await self._start_heartbeat()
        self.health.last_tick = await self.engine.execute(Tick())
        self.health.ticks += 1
        environment, self._environment = self._environment, None
        if environment is not None:  # only a fresh reading: a dead link must not extend an excursion
            self.health.last_environment = await self.engine.execute(CheckRefrigerator(environment.temperature_c))

    # --- tasks ------------------------------------------------------------------------------------------------

    async def _feed(self) -> None:
        async with self.poller.subscribe() as next_result:
            while True:
                result = await next_result()
                try:
                    await self._handle(result)
                except Exception:  # a bug must not blind the cabinet: report it and keep watching
                    self.health.bugs += 1
                    log.exception("handling a snapshot raised")

    async def _tick_every_period(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + self.tick_period_s, loop.time())
            await asyncio.sleep(next_at - loop.time())
            try:
                await self.tick()
            except Exception:  # as above: the next tick still runs
                self.health.bugs += 1
                log.exception("a tick raised")

    async def _start_heartbeat(self) -> None:
        try:
            await self.heartbeat.start()
        except ControllerError as error:
            log.warning("cannot arm the watchdog yet: [%s] %s", error.code, error.detail)
            return
        self._heartbeat_started = True

    # --- one snapshot -----------------------------------------------------------------------------------------

    async def _handle(self, result: PollSuccess[StampedSnapshot] | PollFailure) -> None:
        if isinstance(result, PollFailure):
            self.health.poll_failures += 1
            self.health.last_poll_error = result.error
            if result.consecutive == 1:
                log.warning("I/O board read failed: [%s] %s", result.error.code, result.error.detail)
            return
        if result.recovered:
            log.info("I/O board answers again after %s", self.health.last_poll_error)
        stamped = result.snapshot
        if self._unrestored():
            self.health.restored = await self.engine.restore()
        applied = await self.engine.handle_snapshot(stamped.snapshot, actuations=stamped.actuations)
        if applied.data.get("stale"):
            self.health.stale += 1
        elif applied.ok:
            self.health.snapshots += 1
        else:
            self.health.refusals += 1
            self.health.last_refusal = applied
            log.warning("snapshot not fully recorded: [%s] %s", applied.code, applied.detail)
        self._environment = stamped.snapshot.environment
        await self._watch_board_faults(stamped.snapshot)

    def _unrestored(self) -> bool:
        return any(c.state is CompartmentState.UNKNOWN for c in self.engine.ctx.compartments.by_id.values())

    async def _watch_board_faults(self, snapshot: BoardSnapshot) -> None:
        reported = await self.engine.execute(
            ReportBoardFaults(
                snapshot.faults,
                {"faults": sorted(snapshot.faults), "heartbeat": snapshot.heartbeat},
                watchdog_timeout_ms=self.heartbeat.watchdog_timeout_ms,
            )
        )
        if reported.payload is not None and reported.payload.recorded:
            self.health.board_faults.extend(reported.payload.recorded)
            for name in reported.payload.recorded:
                log.warning("I/O board fault: %s", name)
