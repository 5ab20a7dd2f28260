"""Rigs for the I/O board contract suite: the same interface and the same physical world, three ways.

``fake``: the in-memory FakeIoBoard. ``tcp`` / ``rtu``: the real driver on the simulator over Modbus TCP and over
Modbus RTU on a pseudo-terminal, the simulator on a ManualClock so hold timers and the watchdog run by hand. Each
as a protocol version 2 board (the default) or a version 1 board.
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

    def __init__(
        self,
        kind: str,
        board: IoBoard,
        world: Any,
        advance: Callable[[float], None],
        connect: Callable[[], Awaitable[IoBoard]] | None = None,
    ) -> None:
        self.kind = kind
        self.board = board
        self.world = world
        self.advance = advance
        self._connect = connect

    async def disconnect(self) -> None:
        """The controller goes away (its process stops); the board runs on."""
        if self._connect is None:
            self.world.lose_link(1_000_000, "comm.disconnected")  # the fake has no connection to drop
        else:
            await self.board.close()

    async def reconnect(self) -> None:
        """The controller comes back: a new driver, a new connection, identify again."""
        if self._connect is None:
            self.world.lose_link(0)
        else:
            self.board = await self._connect()

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
async def open_rig(
    kind: str, faults: FaultPlan | None = None, timeout: float = 0.25, protocol_version: int = 2
) -> AsyncIterator[Rig]:
    if kind == "fake":
        fake = FakeIoBoard(
            drawer_count=LAYOUT.drawer_count,
            pockets_per_drawer=LAYOUT.pockets_per_drawer,
            lidded=LAYOUT.lidded,
            motorised=LAYOUT.motorised,
            protocol_version=protocol_version,
        )
        yield Rig(kind, fake, fake, fake.advance)
        return
    clock = ManualClock(1000.0)
    sim = await io_board_sim.start(
        control=ControlSurface(),
        clock=clock,
        faults=faults,
        transport=kind,
        layout=LAYOUT,
        protocol_version=protocol_version,
    )
    try:

        async def connect() -> IoBoard:
            return await IoBoardDriver.connect(sim.url, timeout=timeout)

        rig = Rig(kind, await connect(), sim.model, clock.advance, connect)
        try:
            yield rig
        finally:
            await rig.board.close()
    finally:
        await sim.close()


def run(coroutine: Awaitable[Any], timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(bounded())
