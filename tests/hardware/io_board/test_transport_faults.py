"""Transport faults and bad input, driver + simulator on the real transports: every fault gives a typed error
(never a hang, never a silent success), and the link recovers for the next request."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from controller.errors import CommunicationError, ConfigurationError
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.modbus_transport import ModbusTransport, parse_endpoint
from simulators.common.faults import Fault, FaultKind
from tests.hardware.io_board.rigs import Rig, open_rig, run

TIMEOUT = 0.2

# (transport, fault kind, params) -> the code a read that meets it every time must raise
EVERY_TIME = [
    ("tcp", FaultKind.DROP_RESPONSE, {}, "comm.timeout"),
    ("rtu", FaultKind.DROP_RESPONSE, {}, "comm.timeout"),
    ("tcp", FaultKind.DELAY_RESPONSE, {"seconds": 0.5}, "comm.timeout"),
    ("rtu", FaultKind.DELAY_RESPONSE, {"seconds": 0.5}, "comm.timeout"),
    ("tcp", FaultKind.TRUNCATE, {}, "comm.timeout"),  # stops answering mid-transfer
    ("rtu", FaultKind.TRUNCATE, {}, "comm.timeout"),
    ("rtu", FaultKind.CORRUPT_CRC, {}, "comm.crc"),
    ("rtu", FaultKind.DISCONNECT, {}, "comm.timeout"),  # a serial line that goes silent
]


async def _armed(rig: Rig, kind: FaultKind, params: dict[str, object], times: int) -> None:
    """Arm a fault on the simulator's own plan (after connecting, so identify is not hit)."""
    rig.world.faults.add(Fault(kind, at_request=rig.world.request_count + 1, times=times, params=dict(params)))


@pytest.mark.parametrize(("transport", "fault", "params", "code"), EVERY_TIME)
def test_persistent_transport_fault_raises_its_code_and_the_link_recovers(
    transport: str, fault: FaultKind, params: dict[str, object], code: str
) -> None:
    async def go() -> None:
        async with open_rig(transport, timeout=TIMEOUT) as rig:
            await _armed(rig, fault, params, times=0)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(CommunicationError) as caught:
                await rig.board.snapshot()
            assert caught.value.code == code, caught.value
            assert loop.time() - started < 5  # bounded: retries x timeout, no hang
            rig.world.faults.clear()
            await asyncio.sleep(0.6)  # let a delayed answer come and go
            for _ in range(3):
                snapshot = await rig.board.snapshot()
                assert snapshot.is_simulator

    run(go())


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
@pytest.mark.parametrize("fault", [FaultKind.DROP_RESPONSE, FaultKind.CORRUPT_CRC, FaultKind.GARBAGE])
def test_one_bad_answer_to_a_read_is_retried(transport: str, fault: FaultKind) -> None:
    async def go() -> None:
        async with open_rig(transport, timeout=TIMEOUT) as rig:
            await _armed(rig, fault, {"data": "ff 00 13 37"}, times=1)
            snapshot = await rig.board.snapshot()  # reads are retried: the second attempt answers
            assert snapshot.drawer(1).is_closed

    run(go())


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_unlock_never_succeeds_silently_when_every_answer_is_lost(transport: str) -> None:
    async def go() -> None:
        async with open_rig(transport, timeout=TIMEOUT) as rig:
            await _armed(rig, FaultKind.DROP_RESPONSE, {}, times=0)
            with pytest.raises(CommunicationError):
                await rig.board.ensure_unlocked(1, 5)

    run(go())


def test_tcp_disconnect_is_typed_and_the_driver_reconnects() -> None:
    async def go() -> None:
        async with open_rig("tcp", timeout=TIMEOUT) as rig:
            await _armed(rig, FaultKind.DISCONNECT, {}, times=0)
            with pytest.raises(CommunicationError) as caught:
                await rig.board.snapshot()
            assert caught.value.code in ("comm.disconnected", "comm.timeout")
            rig.world.faults.clear()
            assert (await rig.board.snapshot()).is_simulator

    run(go())


def test_garbage_on_the_rtu_line_is_survived() -> None:
    async def go() -> None:
        async with open_rig("rtu", timeout=TIMEOUT) as rig:
            assert isinstance(rig.board, IoBoardDriver)
            path = parse_endpoint(rig.board.url).device
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            try:
                for garbage in (b"\x00\xff\x01\x03\x00", bytes(range(256)), b"\x01\x03\x02"):
                    os.write(fd, garbage)  # noise on the bus, as a second talker or a bad cable makes
                    await asyncio.sleep(0.05)
                    snapshot = await rig.board.snapshot()
                    assert snapshot.is_simulator
            finally:
                os.close(fd)

    run(go())


def test_garbage_on_a_tcp_connection_does_not_harm_other_clients() -> None:
    async def go() -> None:
        async with open_rig("tcp", timeout=TIMEOUT) as rig:
            assert isinstance(rig.board, IoBoardDriver)
            endpoint = parse_endpoint(rig.board.url)
            loop = asyncio.get_running_loop()
            raw = socket.create_connection((endpoint.host, endpoint.port))
            raw.setblocking(False)
            try:
                await loop.sock_sendall(raw, bytes(range(256)) * 4)
                await asyncio.sleep(0.05)
                assert (await rig.board.snapshot()).is_simulator
            finally:
                raw.close()

    run(go())


def test_a_board_that_never_answers_times_out() -> None:
    """A listening socket that accepts and says nothing: comm.timeout within the bound, no hang."""

    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(CommunicationError) as caught:
                await IoBoardDriver.connect(f"tcp://127.0.0.1:{port}?unit=1", timeout=TIMEOUT)
            assert caught.value.code == "comm.timeout"
        finally:
            server.close()
            await server.wait_closed()

    run(go())


def test_nobody_listening_is_disconnected() -> None:
    async def go() -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        with pytest.raises(CommunicationError) as caught:
            await ModbusTransport.connect(f"tcp://127.0.0.1:{port}?unit=1", timeout=TIMEOUT)
        assert caught.value.code == "comm.disconnected"

    run(go())


@pytest.mark.parametrize(
    "url",
    [
        "udp://127.0.0.1:502",
        "tcp://:502",
        "tcp://127.0.0.1:502?unit=0",
        "tcp://127.0.0.1:502?unit=abc",
        "tcp://127.0.0.1:502?speed=9600",
        "rtu://?unit=1",
        "rtu:///dev/ttyUSB0?parity=X",
        "rtu:///dev/ttyUSB0?baud=-1",
        "/dev/ttyUSB0",
    ],
)
def test_bad_endpoints_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_endpoint(url)
    assert caught.value.code == "comm.bad_endpoint"


def test_endpoint_forms() -> None:
    tcp = parse_endpoint("tcp://127.0.0.1:5020?unit=3")
    assert (tcp.scheme, tcp.host, tcp.port, tcp.unit) == ("tcp", "127.0.0.1", 5020, 3)
    rtu = parse_endpoint("rtu:///dev/pts/7?unit=2&baud=9600&parity=E")
    assert (rtu.scheme, rtu.device, rtu.unit, rtu.baudrate, rtu.parity) == ("rtu", "/dev/pts/7", 2, 9600, "E")
    assert parse_endpoint("tcp://board.local?unit=1").port == 502


def test_modbus_exception_answer_is_typed() -> None:
    async def go() -> None:
        async with open_rig("tcp", timeout=TIMEOUT) as rig:
            assert isinstance(rig.board, IoBoardDriver)
            transport = await ModbusTransport.connect(rig.board.url, timeout=TIMEOUT)
            try:
                with pytest.raises(CommunicationError) as caught:
                    await transport.write_register(0, 1)  # board_id is read-only
                assert caught.value.code == "comm.device_exception" and caught.value.context["exception_code"] == 2
                with pytest.raises(CommunicationError) as caught:
                    await transport.read_registers(150, 2)  # unmapped
                assert caught.value.context["exception_code"] == 2
                assert len(await transport.read_registers(0, 4)) == 4  # the link is fine afterwards
            finally:
                await transport.close()

    run(go())


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_a_lost_answer_to_an_acknowledgement_is_retried_harmlessly(transport: str) -> None:
    """The board applied the write but its answer was lost: the driver sends the same "set to value" again, and
    the board ends exactly where one write would have left it (openings_seen is not a reset)."""

    async def go() -> None:
        async with open_rig(transport, timeout=TIMEOUT) as rig:
            await rig.board.ensure_unlocked(1, 30)
            rig.open_drawer(1)
            rig.close_drawer(1)
            assert (await rig.board.snapshot()).drawer(1).unrecorded_openings == 1
            await _armed(rig, FaultKind.DROP_RESPONSE, {}, times=1)  # the write's answer
            requests = rig.world.request_count
            await rig.board.ensure_openings_seen(1, 1)
            assert rig.world.request_count == requests + 3  # write, the same write again, the read-back
            state = (await rig.board.snapshot()).drawer(1)
            assert (state.openings, state.openings_seen, state.unrecorded_openings) == (1, 1, 0)

    run(go())


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_a_version_2_snapshot_is_bounded_when_the_counters_read_fails(transport: str) -> None:
    async def go() -> None:
        async with open_rig(transport, timeout=TIMEOUT) as rig:
            rig.world.faults.add(Fault(FaultKind.DROP_RESPONSE, at_request=rig.world.request_count + 2, times=0))
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(CommunicationError) as caught:
                await rig.board.snapshot()  # the first read answers, the counters read never does
            assert caught.value.code == "comm.timeout" and loop.time() - started < 5
            rig.world.faults.clear()
            await asyncio.sleep(0.3)
            assert (await rig.board.snapshot()).drawer(1).unrecorded_openings == 0

    run(go())
