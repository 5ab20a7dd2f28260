"""The I/O board model on its own: the pure core, the clock, the fault plan, the control surface."""

from __future__ import annotations

import asyncio
import json

import pytest

from firmware_protocols.io_board.register_map import CabinetLayout, load_register_map
from simulators import io_board as io_board_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.io_board.model import ExceptionCode, IoBoardModel, Request

MAP = load_register_map()
LAYOUT = CabinetLayout(drawer_count=2, pockets_per_drawer=2, lidded=frozenset({(1, 1)}))


def model(faults: FaultPlan | None = None) -> tuple[IoBoardModel, ManualClock]:
    clock = ManualClock()
    return IoBoardModel(LAYOUT, clock=clock, faults=faults), clock


def read(board: IoBoardModel, address: int) -> int:
    response = board.handle(Request(3, address, 1))
    assert response.exception is None
    return response.values[0]


def released(board: IoBoardModel, drawer: int) -> bool:
    return bool(read(board, MAP.drawer_address(drawer, "drawer_status")) & MAP.mask("drawer_status", "lock_released"))


def test_deterministic_replay() -> None:
    def script() -> list[tuple[int, ...]]:
        board, clock = model()
        out = []
        for step in range(20):
            board.handle(Request(16, MAP.drawer_base(1 + step % 2), 2, (1, 10 + step)))
            clock.advance(0.7)
            out.append(board.handle(Request(3, 0, MAP.snapshot_span(2)[1])).values)
        return out

    assert script() == script()


def test_write_is_atomic_and_validated_before_applying() -> None:
    board, _ = model()
    base = MAP.drawer_base(1)
    assert board.handle(Request(16, base, 2, (1, 5))).exception is ExceptionCode.ILLEGAL_VALUE  # hold < 1 s
    assert not released(board, 1) and read(board, base) == 0
    assert board.handle(Request(16, base - 1, 2, (0, 1))).exception is ExceptionCode.ILLEGAL_ADDRESS
    assert board.handle(Request(5, 0, 1, (1,))).exception is ExceptionCode.ILLEGAL_FUNCTION
    assert board.handle(Request(3, 0, 126)).exception is ExceptionCode.ILLEGAL_VALUE


def test_fault_plan_fires_at_the_nth_request_and_at_a_time() -> None:
    plan = FaultPlan(
        [
            Fault(FaultKind.REBOOT, at_request=3),
            Fault(FaultKind.JAM_DRAWER, at_time=10.0, params={"drawer": 2}),
            Fault(FaultKind.DROP_RESPONSE, at_request=5),
        ]
    )
    board, clock = model(plan)
    status = MAP.board_address("status")
    assert read(board, status) == 0
    assert read(board, status) == 0
    assert read(board, status) & MAP.mask("board_status", "rebooted")  # third request
    assert board.handle(Request(3, status, 1)).transport_faults == ()
    assert [f.kind for f in board.handle(Request(3, status, 1)).transport_faults] == [FaultKind.DROP_RESPONSE]
    clock.advance(10)
    board.handle(Request(16, MAP.drawer_base(2), 2, (1, 50)))
    assert read(board, MAP.drawer_address(2, "drawer_status")) & MAP.mask("drawer_status", "jammed")
    with pytest.raises(ValueError, match="jammed"):
        board.open_drawer(2)


def test_reboot_loses_volatile_state_but_not_physics() -> None:
    board, _ = model()
    board.handle(Request(6, MAP.pocket_address(1, 2, "light"), 1, (0x21,)))
    board.handle(Request(16, MAP.drawer_base(1), 2, (1, 300)))
    board.open_drawer(1)
    board.reboot()
    assert read(board, MAP.pocket_address(1, 2, "light")) == 0
    assert not released(board, 1)
    word = read(board, MAP.drawer_address(1, "drawer_status"))
    assert word & MAP.mask("drawer_status", "open_sensor")  # still physically open
    assert read(board, MAP.drawer_address(1, "hold_time")) == MAP.drawer.register("hold_time").default


def test_the_fridge_warms_on_the_clock_and_the_ups_drains() -> None:
    board, clock = model()
    board.warm_fridge(0.5)
    clock.advance(600)  # ten minutes
    assert read(board, MAP.environment_address("temperature")) == 100  # 5.0 + 5.0 degC
    board.cut_power()
    clock.advance(90 * 60)
    flags = MAP.decode_bits("env_flags", read(board, MAP.environment_address("env_flags")))
    assert {"on_ups", "ups_battery_low"} <= flags and "mains_present" not in flags
    assert read(board, MAP.environment_address("ups_charge")) == 10


def test_a_locked_drawer_cannot_be_opened_and_a_lid_needs_its_drawer_open() -> None:
    board, _ = model()
    with pytest.raises(ValueError, match="locked"):
        board.open_drawer(1)
    board.handle(Request(16, MAP.pocket_base(1, 1), 2, (1, 50)))
    with pytest.raises(ValueError, match="closed"):
        board.lift_lid(1, 1)


def test_start_registers_control_actions_and_serves_the_control_socket() -> None:
    async def go() -> None:
        control = ControlSurface()
        sim = await io_board_sim.start(control=control, layout=LAYOUT)
        port = await control.serve()
        try:
            assert sim.env_var == "ADC_IO_BOARD" and sim.url.startswith("tcp://127.0.0.1:") and "unit=1" in sim.url
            assert "open_drawer" in control.devices()["io_board"]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b'{"device": "io_board", "action": "set_fridge_temperature", "args": {"celsius": 9.5}}\n')
            await writer.drain()
            assert json.loads(await reader.readline())["ok"] is True
            writer.write(b'{"device": "io_board", "action": "open_drawer", "args": {"drawer": 1}}\n')
            await writer.drain()
            answer = json.loads(await reader.readline())
            assert answer["ok"] is False and "locked" in answer["error"]
            writer.close()
            await writer.wait_closed()
            assert sim.model.temperature_c == pytest.approx(9.5, abs=0.01)  # real clock: the compressor runs
        finally:
            await control.close()
            await sim.close()

    asyncio.run(go())


def test_start_on_rtu_gives_a_pty_url() -> None:
    async def go() -> None:
        sim = await io_board_sim.start(control=ControlSurface(), transport="rtu", unit=3, baudrate=9600)
        try:
            assert sim.url.startswith("rtu:///dev/") and sim.url.endswith("?unit=3&baud=9600")
        finally:
            await sim.close()

    asyncio.run(go())
