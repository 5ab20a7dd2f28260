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


# --- opening counters (protocol version 2) --------------------------------------------------------------------------


def counters(board: IoBoardModel, drawer: int) -> tuple[int, int, int]:
    """(openings, openings_seen, lids_opened) of a drawer, read as a controller would."""
    response = board.handle(Request(3, MAP.drawer_counters_base(drawer), 3))
    assert response.exception is None
    openings, seen, lids = response.values
    return openings, seen, lids


def opened_bit(board: IoBoardModel, drawer: int) -> bool:
    return bool(read(board, MAP.drawer_address(drawer, "drawer_status")) & MAP.mask("drawer_status", "opened"))


def unlock(board: IoBoardModel, drawer: int) -> None:
    assert board.handle(Request(16, MAP.drawer_base(drawer), 2, (1, 300))).exception is None


def test_every_open_edge_is_counted_and_latched_until_acknowledged() -> None:
    board, _ = model()
    assert counters(board, 1) == (0, 0, 0) and not opened_bit(board, 1)
    for _ in range(3):  # three openings nobody polled in between
        unlock(board, 1)
        board.open_drawer(1)
        board.close_drawer(1)
    assert counters(board, 1)[:2] == (3, 0) and opened_bit(board, 1)
    seen = MAP.drawer_counter_address(1, "openings_seen")
    assert board.handle(Request(6, seen, 1, (2,))).exception is None  # recorded two of them
    assert counters(board, 1)[:2] == (3, 2) and opened_bit(board, 1)
    for _ in range(2):  # "set to value": a retried acknowledgement changes nothing
        assert board.handle(Request(6, seen, 1, (3,))).exception is None
        assert counters(board, 1)[:2] == (3, 3) and not opened_bit(board, 1)
    assert board.handle(Request(6, MAP.drawer_counter_address(1, "openings"), 1, (0,))).exception is (
        ExceptionCode.ILLEGAL_ADDRESS  # the count itself is read-only: no one can erase an opening
    )
    assert read(board, MAP.drawer_counter_address(1, "reserved")) == 0


def test_a_forced_open_and_a_stuck_sensor_are_counted_too() -> None:
    board, _ = model()
    board.stick_sensor(2, "open", True)  # pried open past the latch, as the sensors see it
    assert counters(board, 2)[0] == 1 and opened_bit(board, 2)
    board.stick_sensor(2, "closed", False)  # still not closed: no new edge
    board.unstick_sensors(2)
    assert counters(board, 2)[0] == 1
    board.stick_sensor(2, "closed", False)
    assert counters(board, 2)[0] == 2


def test_lid_openings_are_counted_per_lid_and_summarised_per_drawer() -> None:
    board, _ = model()
    unlock(board, 1)
    board.open_drawer(1)
    assert board.handle(Request(16, MAP.pocket_base(1, 1), 2, (1, 50))).exception is None
    board.lift_lid(1, 1)
    board.close_lid(1, 1)
    assert counters(board, 1)[2] == 0b01  # lid 1 has an unrecorded opening
    lid = MAP.pocket_counters_base(1, 1)
    assert board.handle(Request(3, lid, 2)).values == (1, 0)
    status = read(board, MAP.pocket_address(1, 1, "pocket_status"))
    assert status & MAP.mask("pocket_status", "lid_opened")
    assert board.handle(Request(6, lid + 1, 1, (1,))).exception is None
    assert counters(board, 1)[2] == 0
    assert not read(board, MAP.pocket_address(1, 1, "pocket_status")) & MAP.mask("pocket_status", "lid_opened")
    assert board.describe()["lids"]["1.1"]["openings"] == 1


def test_counters_survive_a_reboot_and_wrap() -> None:
    board, _ = model()
    board.preset_openings(1, 65535)
    unlock(board, 1)
    board.open_drawer(1)
    board.close_drawer(1)
    assert counters(board, 1)[:2] == (0, 65535)  # wrapped; (0 - 65535) mod 65536 = 1 unrecorded
    board.reboot()
    assert counters(board, 1)[:2] == (0, 65535) and opened_bit(board, 1)
    assert board.describe()["drawers"][1]["unrecorded_openings"] == 1
    with pytest.raises(ValueError):
        board.preset_openings(1, 65536)


def test_an_acknowledgement_the_memory_does_not_keep_reads_back_the_old_value() -> None:
    board, _ = model()
    board.preset_openings(2, 5, seen=3)
    board.fail_counter_write(2)
    seen = MAP.drawer_counter_address(2, "openings_seen")
    assert board.handle(Request(6, seen, 1, (5,))).exception is None
    assert read(board, seen) == 3
    board.repair_counter_write(2)
    board.handle(Request(6, seen, 1, (5,)))
    assert read(board, seen) == 5


def test_a_version_1_board_is_the_first_register_map_exactly() -> None:
    clock = ManualClock()
    board = IoBoardModel(LAYOUT, clock=clock, protocol_version=1)
    assert read(board, MAP.board_address("protocol_version")) == 1
    for address in (MAP.drawer_counters_base(1), MAP.drawer_counter_address(2, "openings_seen")):
        assert board.handle(Request(3, address, 1)).exception is ExceptionCode.ILLEGAL_ADDRESS
        assert board.handle(Request(6, address, 1, (0,))).exception is ExceptionCode.ILLEGAL_ADDRESS
    assert board.handle(Request(3, MAP.pocket_counters_base(1, 1), 2)).exception is ExceptionCode.ILLEGAL_ADDRESS
    board.handle(Request(16, MAP.drawer_base(1), 2, (1, 300)))
    board.open_drawer(1)
    board.close_drawer(1)
    assert not read(board, MAP.drawer_address(1, "drawer_status")) & MAP.mask("drawer_status", "opened")
    assert board.describe()["drawers"][1]["openings"] == 1  # the model still knows; no register says so
    v2 = IoBoardModel(LAYOUT, clock=clock)
    assert read(v2, MAP.board_address("protocol_version")) == 2


def test_the_control_surface_reports_and_presets_counts() -> None:
    control = ControlSurface()
    board, _ = model()
    board.register_actions(control)
    answer = control.dispatch({"device": "io_board", "action": "preset_openings", "args": {"drawer": 1, "openings": 9}})
    assert answer["ok"] is True
    board.stick_sensor(1, "open", True)
    described = control.dispatch({"device": "io_board", "action": "describe"})["result"]
    assert described["protocol_version"] == 2
    drawer = described["drawers"][1]
    assert (drawer["openings"], drawer["openings_seen"], drawer["unrecorded_openings"]) == (10, 9, 1)
