"""Conformance: pymodbus' own client (not our driver) reads and writes the simulated board exactly as SPEC.md
documents, every address taken from register_map.toml, for a protocol version 1 and a version 2 board. What a
third-party master would see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from firmware_protocols.io_board import codec
from firmware_protocols.io_board.register_map import Access, CabinetLayout, load_register_map
from simulators import io_board as io_board_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface

MAP = load_register_map()
V1 = load_register_map(1)
LAYOUT = CabinetLayout(drawer_count=3, pockets_per_drawer=2, lidded=frozenset({(1, 1)}), motorised=frozenset({3}))
UNIT = 7


@asynccontextmanager
async def raw_client(transport: str, protocol_version: int = 2) -> AsyncIterator[tuple[Any, Any, ManualClock]]:
    clock = ManualClock()
    sim = await io_board_sim.start(
        control=ControlSurface(),
        clock=clock,
        transport=transport,
        unit=UNIT,
        layout=LAYOUT,
        protocol_version=protocol_version,
    )
    client: Any
    if transport == "tcp":
        port = int(sim.url.split(":")[2].split("?")[0])
        # Timeouts well above any answer's time: this test checks what each register does, not how fast (a 1 s
        # limit once failed a loaded CI run on one write over the pseudo-terminal).
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
    else:
        client = AsyncModbusSerialClient(
            sim.url[len("rtu://") :].split("?")[0], baudrate=MAP.protocol.baudrate, timeout=3, retries=0
        )
    try:
        assert await client.connect()
        yield client, sim.model, clock
    finally:
        client.close()
        await sim.close()


def conform(
    transport: str, body: Callable[[Any, Any, ManualClock], Awaitable[None]], protocol_version: int = 2
) -> None:
    async def go() -> None:
        async with asyncio.timeout(20), raw_client(transport, protocol_version) as (client, model, clock):
            await body(client, model, clock)

    asyncio.run(go())


@pytest.fixture(params=["tcp", "rtu"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def read(client: Any, address: int, count: int = 1) -> list[int]:
    response = await client.read_holding_registers(address, count=count, device_id=UNIT)
    assert not response.isError(), (address, count, response)
    return list(response.registers)


async def exception_of(call: Awaitable[Any]) -> int:
    response = await call
    assert response.isError()
    return int(response.exception_code)


def test_identity_block(transport: str, version: int) -> None:
    async def body(client: Any, _model: Any, _clock: ManualClock) -> None:
        words = await read(client, MAP.board.base, 8)
        assert words[0] == MAP.protocol.board_id
        assert words[1] == version
        assert codec.firmware_version(*words[2:5]) == "1.4.2"
        assert MAP.decode_bits("identity", words[5]) == {"is_simulator"}
        assert words[6:8] == [LAYOUT.drawer_count, LAYOUT.pockets_per_drawer]
        first, count = MAP.snapshot_span(LAYOUT.drawer_count)
        assert len(await read(client, first, count)) == count  # the whole snapshot in one read

    conform(transport, body, version)


def test_every_register_has_its_documented_access_and_range(transport: str, version: int) -> None:
    register_map = load_register_map(version)

    async def body(client: Any, _model: Any, _clock: ManualClock) -> None:
        for first, count in register_map.mapped_ranges(LAYOUT.drawer_count, LAYOUT.pockets_per_drawer):
            for address in range(first, first + count):
                location = register_map.locate(address, LAYOUT.drawer_count, LAYOUT.pockets_per_drawer)
                assert location is not None
                register = location.register
                (value,) = await read(client, address)
                if register.access is Access.WRITE:
                    assert value == 0, register.name  # commands read back 0
                elif register.type != "bits" and register.minimum is not None:
                    assert register.accepts(value), (register.name, value)
                if register.access is Access.READ:
                    assert await exception_of(client.write_register(address, value, device_id=UNIT)) == 2
                    continue
                if register.maximum is not None and register.maximum < 0xFFFF and register.type != "i16":
                    assert (
                        await exception_of(client.write_register(address, register.maximum + 1, device_id=UNIT)) == 3
                    ), register.name
                if register.minimum:
                    assert (
                        await exception_of(client.write_register(address, register.minimum - 1, device_id=UNIT)) == 3
                    ), register.name

    conform(transport, body, version)


def test_unmapped_addresses_and_functions_are_refused(transport: str) -> None:
    async def body(client: Any, _model: Any, _clock: ManualClock) -> None:
        beyond = MAP.drawer_base(LAYOUT.drawer_count) + MAP.drawer.size
        assert await exception_of(client.read_holding_registers(beyond, count=1, device_id=UNIT)) == 2
        assert await exception_of(client.read_holding_registers(MAP.pocket_base(1, 3), count=1, device_id=UNIT)) == 2
        assert await exception_of(client.read_coils(0, count=1, device_id=UNIT)) == 1
        assert await exception_of(client.write_coil(0, True, device_id=UNIT)) == 1
        assert (
            await exception_of(client.write_register(MAP.pocket_address(1, 2, "lid_command"), 1, device_id=UNIT)) == 3
        )
        assert await exception_of(client.write_register(MAP.pocket_address(1, 1, "light"), 0x0007, device_id=UNIT)) == 3

    conform(transport, body)


def test_drawer_unlock_hold_and_latch_as_documented(transport: str) -> None:
    async def body(client: Any, model: Any, clock: ManualClock) -> None:
        base = MAP.drawer_base(2)
        status = MAP.drawer_address(2, "drawer_status")
        released = MAP.mask("drawer_status", "lock_released")
        # [lock_command = 1, hold_time = 20 (2.0 s)] in one 0x10 write
        response = await client.write_registers(base, [1, 20], device_id=UNIT)
        assert not response.isError() and (response.address, response.count) == (base, 2)
        (word,) = await read(client, status)
        assert word & released and word & MAP.mask("drawer_status", "closed_sensor")
        clock.advance(2.0)  # not opened: relocks when the hold ends
        assert not (await read(client, status))[0] & released
        assert (await read(client, base))[0] == 0
        await client.write_register(base, 1, device_id=UNIT)
        model.open_drawer(2)
        clock.advance(30)  # open: stays released
        word = (await read(client, status))[0]
        assert word & released and word & MAP.mask("drawer_status", "open_sensor")
        assert (await read(client, MAP.drawer_address(2, "position")))[0] == 100
        model.close_drawer(2)
        assert not (await read(client, status))[0] & released  # latched on close

    conform(transport, body)


def test_heartbeat_and_watchdog_as_documented(transport: str) -> None:
    async def body(client: Any, _model: Any, clock: ManualClock) -> None:
        status = MAP.board_address("status")
        expired = MAP.mask("board_status", "watchdog_expired")
        await client.write_register(MAP.board_address("watchdog_timeout_ms"), 500, device_id=UNIT)
        await client.write_register(MAP.board_address("heartbeat"), 1, device_id=UNIT)
        await client.write_register(MAP.drawer_address(1, "lock_command"), 1, device_id=UNIT)
        clock.advance(0.4)
        await client.write_register(MAP.board_address("heartbeat"), 2, device_id=UNIT)
        clock.advance(0.4)
        assert not (await read(client, status))[0] & expired
        clock.advance(0.2)
        assert (await read(client, status))[0] & expired
        assert not (await read(client, MAP.drawer_address(1, "drawer_status")))[0] & MAP.mask(
            "drawer_status", "lock_released"
        )
        await client.write_register(MAP.board_address("fault_clear"), expired, device_id=UNIT)
        assert not (await read(client, status))[0] & expired

    conform(transport, body)


def test_environment_block_as_documented(transport: str) -> None:
    async def body(client: Any, model: Any, _clock: ManualClock) -> None:
        model.set_fridge_temperature(-18.5)
        model.set_humidity(61.2)
        model.cut_power()
        words = await read(client, MAP.environment.base, MAP.environment.size)
        assert codec.decode_i16(words[0]) == -185
        assert words[1] == 612
        assert MAP.decode_bits("env_flags", words[2]) == {"compressor_on", "on_ups"}

    conform(transport, body)


def test_a_request_for_another_unit_gets_no_answer_on_rtu() -> None:
    async def body(client: Any, _model: Any, _clock: ManualClock) -> None:
        with pytest.raises(ModbusIOException):  # silence
            await client.read_holding_registers(0, count=1, device_id=UNIT + 1)

    conform("rtu", body)


# --- version 2: the opening counters --------------------------------------------------------------------------------


def test_drawer_opening_counter_as_documented(transport: str) -> None:
    async def body(client: Any, model: Any, _clock: ManualClock) -> None:
        counters = MAP.drawer_counters_base(2)
        seen = MAP.drawer_counter_address(2, "openings_seen")
        status = MAP.drawer_address(2, "drawer_status")
        opened = MAP.mask("drawer_status", "opened")
        assert await read(client, counters, 4) == [0, 0, 0, 0]
        for _ in range(2):  # two openings between two reads
            await client.write_registers(MAP.drawer_base(2), [1, 100], device_id=UNIT)
            model.open_drawer(2)
            model.close_drawer(2)
        assert await read(client, counters, 4) == [2, 0, 0, 0]
        assert (await read(client, status))[0] & opened
        # every drawer's counters in one read
        first, count = MAP.drawer_counters_span(LAYOUT.drawer_count)
        assert (await read(client, first, count))[4:8] == [2, 0, 0, 0]
        for _ in range(2):  # writing the recorded count, twice: the second changes nothing
            response = await client.write_register(seen, 2, device_id=UNIT)
            assert not response.isError() and list(response.registers) == [2]  # 0x06 echoes
            assert await read(client, counters, 2) == [2, 2]
        assert not (await read(client, status))[0] & opened
        assert await exception_of(client.write_register(counters, 0, device_id=UNIT)) == 2  # openings is read-only
        assert await exception_of(client.write_register(counters + 3, 0, device_id=UNIT)) == 2
        model.reboot()
        assert await read(client, counters, 2) == [2, 2]  # non-volatile

    conform(transport, body)


def test_lid_opening_counter_as_documented(transport: str) -> None:
    async def body(client: Any, model: Any, _clock: ManualClock) -> None:
        await client.write_registers(MAP.drawer_base(1), [1, 300], device_id=UNIT)
        model.open_drawer(1)
        await client.write_registers(MAP.pocket_base(1, 1), [1, 100], device_id=UNIT)
        model.lift_lid(1, 1)
        model.close_lid(1, 1)
        lids_opened = MAP.drawer_counter_address(1, "lids_opened")
        lid = MAP.pocket_counters_base(1, 1)
        lid_opened = MAP.mask("pocket_status", "lid_opened")
        assert (await read(client, lids_opened))[0] == 0b01
        assert await read(client, lid, 2 * LAYOUT.pockets_per_drawer) == [1, 0, 0, 0]
        assert (await read(client, MAP.pocket_address(1, 1, "pocket_status")))[0] & lid_opened
        response = await client.write_registers(lid + 1, [1], device_id=UNIT)  # 0x10 works as well as 0x06
        assert not response.isError()
        assert (await read(client, lids_opened))[0] == 0
        assert not (await read(client, MAP.pocket_address(1, 1, "pocket_status")))[0] & lid_opened
        assert await exception_of(client.write_register(lid, 0, device_id=UNIT)) == 2
        beyond = MAP.pocket_counters_base(1, LAYOUT.pockets_per_drawer + 1)
        assert await exception_of(client.read_holding_registers(beyond, count=1, device_id=UNIT)) == 2

    conform(transport, body)


def test_a_version_1_board_does_not_map_the_counters(transport: str) -> None:
    async def body(client: Any, model: Any, _clock: ManualClock) -> None:
        assert (await read(client, V1.board_address("protocol_version")))[0] == 1
        for address in (
            MAP.drawer_counters_base(1),
            MAP.drawer_counter_address(LAYOUT.drawer_count, "openings_seen"),
            MAP.pocket_counters_base(1, 1),
        ):
            assert await exception_of(client.read_holding_registers(address, count=1, device_id=UNIT)) == 2
            assert await exception_of(client.write_register(address, 0, device_id=UNIT)) == 2
        await client.write_registers(V1.drawer_base(1), [1, 300], device_id=UNIT)
        model.open_drawer(1)
        await client.write_registers(V1.pocket_base(1, 1), [1, 100], device_id=UNIT)
        model.lift_lid(1, 1)
        model.close_lid(1, 1)
        model.close_drawer(1)
        assert not (await read(client, V1.drawer_address(1, "drawer_status")))[0] & ~V1.known_mask("drawer_status")
        assert not (await read(client, V1.pocket_address(1, 1, "pocket_status")))[0] & ~V1.known_mask("pocket_status")

    conform(transport, body, protocol_version=1)
