"""Rigs for the I/O board contract suite: the same interface and the same physical world, three ways.

``fake``: the in-memory FakeIoBoard. ``tcp`` / ``rtu``: the real driver on the simulator over Modbus TCP and over
Modbus RTU on a pseudo-terminal, the simulator on a ManualClock so hold timers and the watchdog run by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.io_board.fake import FakeIoBoard
from controller.hardware.io_board.interface import IoBoard
from firmware_protocols.io_board.register_map import CabinetLayout
from simulators import io_board as io_board_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan

KINDS = ("fake", "tcp", "rtu")
LAYOUT = CabinetLayout(
    drawer_count=4, pockets_per_drawer=4, lidded=frozenset({(2, 1), (2, 2)}), motorised=frozenset({4})
)


class Rig:
    """The board under test plus the hands and the clock of the physical world."""

    def __init__(self, kind: str, board: IoBoard, world: Any, advance: Callable[[float], None]) -> None:
        self.kind = kind
        self.board = board
        self.world = world
        self.advance = advance

    def open_drawer(self, drawer: int) -> None:
        self.world.open_drawer(drawer)

    def close_drawer(self, drawer: int) -> None:
        self.world.close_drawer(drawer)

    def lift_lid(self, drawer: int, pocket: int) -> None:
        self.world.lift_lid(drawer, pocket)

    def close_lid(self, drawer: int, pocket: int) -> None:
        self.world.close_lid(drawer, pocket)

    def set_temperature(self, celsius: float) -> None:
        if self.kind == "fake":
            self.world.set_temperature(celsius)
        else:
            self.world.set_fridge_temperature(celsius)

    def __getattr__(self, name: str) -> Any:
        # jam_drawer, fail_lock, stick_sensor, reboot, cut_power, restore_power, set_supply_voltage, short_circuit
        return getattr(self.world, name)


@asynccontextmanager
async def open_rig(kind: str, faults: FaultPlan | None = None, timeout: float = 0.25) -> AsyncIterator[Rig]:
    if kind == "fake":
        fake = FakeIoBoard(
            drawer_count=LAYOUT.drawer_count,
            pockets_per_drawer=LAYOUT.pockets_per_drawer,
            lidded=LAYOUT.lidded,
            motorised=LAYOUT.motorised,
        )
        yield Rig(kind, fake, fake, fake.advance)
        return
    clock = ManualClock(1000.0)
    sim = await io_board_sim.start(control=ControlSurface(), clock=clock, faults=faults, transport=kind, layout=LAYOUT)
    try:
        driver = await IoBoardDriver.connect(sim.url, timeout=timeout)
        try:
            yield Rig(kind, driver, sim.model, clock.advance)
        finally:
            await driver.close()
    finally:
        await sim.close()


def run(coroutine: Awaitable[Any], timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(bounded())
