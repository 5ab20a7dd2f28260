"""Rigs for the pill counter contract suite: the fake, or the driver against the simulator on TCP or a
pseudo-terminal, each with the same handles on the physical world (pour, vial, cover, inject a fault)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from controller.hardware.pill_counter.driver import PillCounterDriver
from controller.hardware.pill_counter.fake import FakePillCounter
from simulators import pill_counter as sim
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.pill_counter.model import COUNTER_JAM, PillCounterModel

RIG_KINDS = ["fake", "tcp", "pty"]
T = TypeVar("T")

# The catalogue code a device fault produces -> the fault-plan kind that makes the simulator produce it.
FAULT_FOR_CODE = {
    "device.counter_jam": COUNTER_JAM,
    "device.hopper_empty": FaultKind.HOPPER_EMPTY,
    "device.foreign_object": FaultKind.FOREIGN_OBJECT,
    "device.cover_open": FaultKind.COVER_OPEN,
    "device.count_uncertain": FaultKind.COUNT_UNCERTAIN,
}


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@dataclass
class Rig:
    kind: str
    device: Any  # PillCounterDriver or FakePillCounter: both PillCounter and CanisterRobot
    pour: Callable[[int], object]
    vial: Callable[[], int]
    open_cover: Callable[[], object]
    close_cover: Callable[[], object]
    fail_next: Callable[[str], object]
    model: PillCounterModel | None = None
    faults: FaultPlan | None = None


@asynccontextmanager
async def open_rig(kind: str, *, hopper: int = 0, rate: float = 400.0, **driver_options: Any) -> AsyncIterator[Rig]:
    if kind == "fake":
        fake = FakePillCounter(hopper=hopper)
        yield Rig(kind, fake, fake.pour, lambda: fake.vial, fake.open_cover, fake.close_cover, fake.fail_next)
        return
    faults = FaultPlan()
    running = await sim.start(control=ControlSurface(), faults=faults, transport=kind, rate=rate, hopper=hopper)
    model: PillCounterModel = running.model
    try:
        driver = await PillCounterDriver.connect(running.url, **driver_options)
        try:

            def fail_next(code: str) -> None:
                faults.add(Fault(FAULT_FOR_CODE[code], at_request=model.requests + 1))

            yield Rig(
                kind,
                driver,
                model.pour,
                lambda: model.vial,
                model.open_cover,
                model.close_cover,
                fail_next,
                model,
                faults,
            )
        finally:
            await driver.close()
    finally:
        await running.close()


async def with_rig(kind: str, body: Callable[[Rig], Awaitable[T]], **options: Any) -> T:
    async with open_rig(kind, **options) as rig:
        return await body(rig)
