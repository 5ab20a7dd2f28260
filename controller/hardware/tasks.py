"""Background-task lifecycle shared by the poller and the heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has really finished, so nothing outlives its owner's ``async with``.

    Cancelled again until it is done: on Python 3.11 ``asyncio.wait_for`` (pymodbus awaits every answer with it)
    drops a cancellation that lands as the answer arrives, and the task would run on. So ``task`` must be a leaf
    whose cleanup does not await (a loop like the poller's): a repeated cancel would cut such a cleanup short."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    with contextlib.suppress(asyncio.CancelledError):
        await task
