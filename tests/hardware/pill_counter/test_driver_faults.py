"""The driver against the simulator's wire faults: each fault in the plan ends in its documented typed error or in
a recovery by retransmitting the same SEQ (never in a second dispense), and nothing hangs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from controller.errors import CommunicationError
from controller.hardware.pill_counter.driver import PillCounterDriver
from controller.hardware.pill_counter.interface import CounterState
from firmware_protocols.pill_counter import codec
from simulators.common.faults import Fault, FaultKind
from simulators.common.pty import open_pseudo_terminal
from tests.hardware.pill_counter.rigs import Rig, run, with_rig

pytestmark = pytest.mark.timeout(60)
FAST: dict[str, Any] = {"response_timeout": 0.15, "inter_byte_timeout": 0.03, "retries": 2}
TRANSPORTS = ["tcp", "pty"]

# Persistent wire faults (every answer) and the error each one documents in SPEC.md.
PERSISTENT = [
    (FaultKind.CORRUPT_CRC, {}, "comm.crc"),
    (FaultKind.TRUNCATE, {}, "comm.timeout"),
    (FaultKind.DROP_RESPONSE, {}, "comm.timeout"),
    # Longer than all attempts together: a late answer with the right SEQ would (rightly) be accepted.
    (FaultKind.DELAY_RESPONSE, {"seconds": 1.0}, "comm.timeout"),
    (FaultKind.GARBAGE, {"data": "0203FF"}, None),  # resynchronised: the genuine answer behind the garbage is used
]


def _arm(rig: Rig, kind: FaultKind, *, times: int, **params: Any) -> None:
    assert rig.faults is not None and rig.model is not None
    rig.faults.add(Fault(kind, at_request=rig.model.requests + 1, times=times, params=params))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("fault", "params", "code"), PERSISTENT, ids=[f[0].value for f in PERSISTENT])
def test_persistent_wire_fault_gives_its_typed_error(
    transport: str, fault: FaultKind, params: dict[str, Any], code: str | None
) -> None:
    async def body(rig: Rig) -> None:
        driver: PillCounterDriver = rig.device
        _arm(rig, fault, times=0, **params)
        started = time.monotonic()
        if code is None:
            status = await driver.status()
            assert status.state is CounterState.IDLE
            assert driver.stats.bad_frames >= 1 and driver.stats.retransmissions == 0
            return
        with pytest.raises(CommunicationError) as caught:
            await driver.status()
        assert caught.value.code == code
        assert driver.stats.retransmissions == FAST["retries"]
        assert time.monotonic() - started < 3.0

    run(with_rig(transport, body, **FAST))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "params"),
    [
        (FaultKind.CORRUPT_CRC, {}),
        (FaultKind.TRUNCATE, {}),
        (FaultKind.DROP_RESPONSE, {}),
        # Lands in the middle of the second attempt's window (0.4-0.8 s): 0.2 s of slack either side.
        (FaultKind.DELAY_RESPONSE, {"seconds": 0.6}),
    ],
)
def test_one_lost_answer_to_dispense_is_retransmitted_and_dispensed_once(
    transport: str, fault: FaultKind, params: dict[str, Any]
) -> None:
    """The retransmission test: the device dispenses, its answer is lost or damaged, the driver resends the SAME
    SEQ, the device answers from its cache: the vial holds exactly n tablets."""

    async def body(rig: Rig) -> None:
        driver: PillCounterDriver = rig.device
        assert rig.model is not None
        # request +1 is SELECT_CANISTER, +2 is DISPENSE: damage the DISPENSE answer.
        assert rig.faults is not None
        rig.faults.add(Fault(fault, at_request=rig.model.requests + 2, times=1, params=params))
        result = await driver.dispense(3, 9)
        assert result.dispensed == 9
        assert driver.stats.retransmissions == 1
        assert rig.model.dispense_actions == 1
        assert rig.model.vial == 9 and rig.model.canisters[3] == 491
        # A late answer (DELAY) to the first attempt must not be taken as the answer to the next request.
        await asyncio.sleep(0.8)
        assert (await driver.report()).vial == 9

    run(with_rig(transport, body, response_timeout=0.4, inter_byte_timeout=0.03, retries=3))


def test_retries_exhausted_on_dispense_never_send_a_new_dispense() -> None:
    async def body(rig: Rig) -> None:
        driver: PillCounterDriver = rig.device
        assert rig.model is not None and rig.faults is not None
        rig.faults.add(Fault(FaultKind.DROP_RESPONSE, at_request=rig.model.requests + 2, times=3))
        with pytest.raises(CommunicationError) as caught:
            await driver.dispense(1, 5)
        assert caught.value.code == "comm.timeout"
        assert rig.model.dispense_actions == 1 and rig.model.vial == 5  # acted once, on the first copy
        report = await driver.report()  # what the caller must do next: read back, never re-dispense blindly
        assert report.vial == 5 and report.canisters[1] == 495

    run(with_rig("tcp", body, **FAST))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_disconnect_is_comm_disconnected(transport: str) -> None:
    async def body(rig: Rig) -> None:
        _arm(rig, FaultKind.DISCONNECT, times=1)
        with pytest.raises(CommunicationError) as caught:
            await rig.device.status()
        assert caught.value.code == "comm.disconnected"

    run(with_rig(transport, body, **FAST))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_miscount_is_invisible_on_the_wire_but_the_vial_differs(transport: str) -> None:
    """MISCOUNT by k: the device reports the target, the vial holds target + k. No wire protocol can see this;
    the controller's defence is an independent check of the vial (vision count, weight). The simulator exposes
    the true vial so that check can be tested."""

    async def body(rig: Rig) -> None:
        assert rig.model is not None
        _arm(rig, FaultKind.MISCOUNT, times=1, by=2)
        result = await rig.device.count(30, timeout=5)
        assert result.count == 30
        assert rig.model.vial_reported == 30
        assert rig.model.vial == 32

    run(with_rig(transport, body, hopper=100, **FAST))


def test_status_shows_progress_and_stop_ends_the_count_short() -> None:
    async def body(rig: Rig) -> None:
        driver: PillCounterDriver = rig.device
        await driver.transact(codec.StartCount(60))
        await asyncio.sleep(0.15)
        status = await driver.status()
        assert status.state is CounterState.COUNTING and 0 < status.count < 60 and status.target == 60
        stopped = await driver.stop()
        assert stopped.state is CounterState.DONE and stopped.count < 60
        assert rig.vial() == stopped.count

    run(with_rig("tcp", body, hopper=100, rate=100.0))


def test_a_count_that_takes_too_long_is_stopped_and_times_out() -> None:
    async def body(rig: Rig) -> None:
        driver: PillCounterDriver = rig.device
        with pytest.raises(CommunicationError) as caught:
            await driver.count(50, timeout=0.2)
        assert caught.value.code == "comm.timeout"
        status = await driver.status()
        assert status.state is CounterState.DONE and status.count < 50

    run(with_rig("tcp", body, hopper=100, rate=50.0))


# --- a device that stops answering in the middle of a frame (not the simulator: a raw half-answer) ---------------


async def _half_answering_tcp() -> tuple[asyncio.Server, str]:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = codec.FrameDecoder()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                for item in decoder.feed(data):
                    if isinstance(item, codec.Frame):
                        answer = codec.encode_reply(item.seq, codec.StatusReply(codec.CounterState.IDLE, 0, 0, 0))
                        writer.write(answer[:5])  # ... and then silence, connection kept open
                        await writer.drain()
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, f"socket://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_device_that_stops_mid_frame_on_tcp_times_out_without_hanging() -> None:
    async def body() -> None:
        server, url = await _half_answering_tcp()
        try:
            started = time.monotonic()
            with pytest.raises(CommunicationError) as caught:
                await PillCounterDriver.connect(url, **FAST)
            assert caught.value.code == "comm.timeout"
            assert time.monotonic() - started < 2.0
        finally:
            server.close()
            await server.wait_closed()

    run(body())


def test_device_that_stops_mid_frame_on_a_pty_times_out_without_hanging() -> None:
    async def body() -> None:
        import os

        pty = open_pseudo_terminal()
        loop = asyncio.get_running_loop()
        decoder = codec.FrameDecoder()

        def readable() -> None:
            with contextlib.suppress(OSError):
                for item in decoder.feed(os.read(pty.master_fd, 1024)):
                    if isinstance(item, codec.Frame):
                        os.write(pty.master_fd, codec.encode_reply(item.seq, codec.Nak(1))[:3])

        loop.add_reader(pty.master_fd, readable)
        try:
            started = time.monotonic()
            with pytest.raises(CommunicationError) as caught:
                await PillCounterDriver.connect(pty.path, **FAST)
            assert caught.value.code == "comm.timeout"
            assert time.monotonic() - started < 2.0
        finally:
            loop.remove_reader(pty.master_fd)
            pty.close()

    run(body())


def test_a_device_of_another_protocol_version_is_refused() -> None:
    async def body() -> None:
        import dataclasses

        from simulators import pill_counter as sim
        from simulators.common.control import ControlSurface

        running = await sim.start(control=ControlSurface())
        try:
            model = running.model
            original = model.execute

            def old_firmware(request: codec.Request) -> codec.Reply:
                reply = original(request)
                return dataclasses.replace(reply, version=2) if isinstance(reply, codec.IdentifyReply) else reply

            model.execute = old_firmware
            with pytest.raises(CommunicationError) as caught:
                await PillCounterDriver.connect(running.url, **FAST)
            assert caught.value.code == "comm.protocol"
        finally:
            await running.close()

    run(body())
