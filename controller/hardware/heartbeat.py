"""The heartbeat task: keeps a board's watchdog fed by writing a changing value at a fixed period.

The board relocks everything when the writes stop (SPEC.md, "Heartbeat and watchdog"); this task is the
controller's side. It sets the board's watchdog timeout on start, writes 1, 2, 3 ... (wrapping, never repeating
the previous value, since the board only counts a changed value), keeps going through failed writes (the next
one may succeed before the watchdog expires) and records them. Explicit lifecycle: ``async with Heartbeat(board)``.
Not responsible for recovering a board whose watchdog did expire (the engine acknowledges the fault).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from controller.errors import ControllerError
from controller.hardware.tasks import cancel_and_wait


class HeartbeatTarget(Protocol):
    async def heartbeat(self, value: int) -> None: ...

    async def set_watchdog_timeout(self, milliseconds: int) -> None: ...


class Heartbeat:
    def __init__(
        self, board: HeartbeatTarget, *, watchdog_timeout_ms: int = 2000, period_s: float | None = None
    ) -> None:
        self._board = board
        self.watchdog_timeout_ms = watchdog_timeout_ms
        # Four beats per watchdog period: one or two lost writes do not relock the cabinet.
        self.period_s = period_s if period_s is not None else watchdog_timeout_ms / 4000
        if not 0 < self.period_s < watchdog_timeout_ms / 1000:
            raise ValueError("the heartbeat period must be shorter than the watchdog timeout")
        self._task: asyncio.Task[None] | None = None
        self.value = 0
        self.beats = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: ControllerError | None = None

    async def __aenter__(self) -> Heartbeat:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._task is None:
            await self._board.set_watchdog_timeout(self.watchdog_timeout_ms)
            await self._beat()  # arm the watchdog before anything may unlock
            self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def healthy(self) -> bool:
        return self.beats > 0 and self.consecutive_failures == 0

    async def _beat(self) -> None:
        self.value = self.value % 0xFFFF + 1  # 1..65535, never the same twice in a row
        try:
            await self._board.heartbeat(self.value)
        except ControllerError as exc:
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = exc
        else:
            self.beats += 1
            self.consecutive_failures = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + self.period_s, loop.time())
            await asyncio.sleep(next_at - loop.time())
            await self._beat()
