"""The sensor poller: reads a board's full snapshot at a fixed rate (>= 10 Hz by default) and publishes it.

Responsible for: a steady poll period (the next read is scheduled from the previous start, not its end), fan-out
to any number of asyncio subscribers (each sees the latest result; a slow subscriber skips stale ones instead of
stalling the poller), reporting a lost link as a typed ``PollFailure`` (and ``recovered`` when it returns), and
never dying on a bad read. Explicit lifecycle: ``async with BoardPoller(board) as poller``. Not responsible for
deciding what a snapshot means (the engine and state machines do).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from controller.errors import CommunicationError, ControllerError, SoftwareError
from controller.hardware.tasks import cancel_and_wait

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class SnapshotSource(Protocol[S_co]):
    async def snapshot(self) -> S_co: ...


@dataclass(frozen=True, slots=True)
class PollSuccess(Generic[S]):
    snapshot: S
    sequence: int
    at: float  # loop time of the read
    recovered: bool = False  # first good read after a failure


@dataclass(frozen=True, slots=True)
class PollFailure:
    error: ControllerError  # comm.timeout, comm.disconnected, device.bad_value, ...
    sequence: int
    at: float
    consecutive: int  # failed reads in a row
    since: float  # loop time of the first of them


PollResult = PollSuccess[S] | PollFailure


class BoardPoller(Generic[S]):
    def __init__(
        self,
        source: SnapshotSource[S],
        *,
        period_s: float = 0.1,
        read_timeout_s: float = 1.0,
        name: str = "io_board",
    ) -> None:
        if period_s <= 0:
            raise ValueError("period must be positive")
        self._source = source
        self.period_s = period_s
        self.read_timeout_s = read_timeout_s
        self.name = name
        self._subscribers: set[asyncio.Queue[PollSuccess[S] | PollFailure]] = set()
        self._task: asyncio.Task[None] | None = None
        self.latest: PollSuccess[S] | PollFailure | None = None
        self.reads = 0
        self.failures = 0

    async def __aenter__(self) -> BoardPoller[S]:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"poller:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Callable[[], Awaitable[PollSuccess[S] | PollFailure]]]:
        """``async with poller.subscribe() as next_result: result = await next_result()`` (latest only)."""
        queue: asyncio.Queue[PollSuccess[S] | PollFailure] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        try:
            yield queue.get
        finally:
            self._subscribers.discard(queue)

    def _publish(self, result: PollSuccess[S] | PollFailure) -> None:
        self.latest = result
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the stale one: subscribers want the present
            queue.put_nowait(result)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sequence = 0
        consecutive = 0
        since = 0.0
        next_at = loop.time()
        while True:
            started = loop.time()
            sequence += 1
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    snapshot = await self._source.snapshot()
            except ControllerError as exc:
                result: PollSuccess[S] | PollFailure = self._failure(exc, sequence, started, consecutive, since)
            except TimeoutError:
                error = _timeout(self.name, self.read_timeout_s)
                result = self._failure(error, sequence, started, consecutive, since)
            except Exception as exc:  # a bug in a driver must not silence every sensor: report it, keep going
                error = SoftwareError("software.bug", f"{self.name} poll raised {type(exc).__name__}: {exc}")
                result = self._failure(error, sequence, started, consecutive, since)
            else:
                self.reads += 1
                result = PollSuccess(snapshot, sequence, started, recovered=consecutive > 0)
            if isinstance(result, PollFailure):
                self.failures += 1
                consecutive, since = result.consecutive, result.since
            else:
                consecutive = 0
            self._publish(result)
            next_at = max(next_at + self.period_s, loop.time())  # do not bunch up after a slow read
            await asyncio.sleep(next_at - loop.time())

    @staticmethod
    def _failure(error: ControllerError, sequence: int, at: float, consecutive: int, since: float) -> PollFailure:
        return PollFailure(error, sequence, at, consecutive + 1, since if consecutive else at)


def _timeout(name: str, seconds: float) -> ControllerError:
    return CommunicationError("comm.timeout", f"{name}: snapshot took more than {seconds} s")
