"""Scanner simulator: the pure model, and the bytes it puts on a pseudo-terminal and on TCP."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from firmware_protocols.scanner import SCANNER_TABLE, Scan, ScanDecodeError, ScanDecoder
from firmware_protocols.scanner.codec import IdentifyReply
from simulators import scanner as scanner_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.scanner.model import Emission, ScannerModel

GS1 = "0100300694200305\x1d17270331\x1d10LOT7"


def collect(model: ScannerModel) -> list[Emission]:
    out: list[Emission] = []
    model.listeners.append(out.append)
    return out


def test_presentation_mode_sends_at_once_with_prefix_and_suffix() -> None:
    model = ScannerModel(suffix="CRLF")
    out = collect(model)
    model.present(GS1, "]d2")
    assert out == [Emission(b"]d2" + GS1.encode() + b"\r\n")]


def test_trigger_mode_waits_for_the_trigger() -> None:
    model = ScannerModel(mode="trigger")
    out = collect(model)
    model.present("ABC", "]C0")
    assert out == []
    assert model.handle(SCANNER_TABLE.trigger) == [Emission(b"]C0ABC\r")]
    assert model.handle(SCANNER_TABLE.trigger) == []  # nothing in view: no read
    assert model.handle(SCANNER_TABLE.untrigger) == []


@pytest.mark.parametrize(("gs", "wire"), [("pass", b"A\x1dB"), ("caret", b"A^]B"), ("drop", b"AB")])
def test_group_separator_settings(gs: str, wire: bytes) -> None:
    model = ScannerModel(gs=gs)
    out = collect(model)
    model.present("A\x1dB")
    assert out == [Emission(b"]d2" + wire + b"\r")]


def test_identify_reports_simulator_from_the_device() -> None:
    [emission] = ScannerModel(baudrate=115200).handle(SCANNER_TABLE.identify)
    [reply] = ScanDecoder().feed(emission.data)
    assert isinstance(reply, IdentifyReply)
    assert reply.get("simulator") == "1" and "SIMULATOR" in reply.get("model") and reply.get("baudrate") == "115200"


def test_faults_each_damage_the_scan_in_their_way() -> None:
    plan = FaultPlan(
        [
            Fault(FaultKind.GARBAGE, at_request=1),
            Fault(FaultKind.TRUNCATE, at_request=2),
            Fault(FaultKind.DROP_RESPONSE, at_request=3),
            Fault(FaultKind.DISCONNECT, at_request=4),
        ]
    )
    model = ScannerModel(faults=plan)
    out = collect(model)
    for _ in range(5):
        model.present("HELLO", "]C0")
    assert out == [
        Emission(b"\x00\xff\x13]C0HELLO\r"),
        Emission(b"]C0H"),
        Emission(disconnect=True),
        Emission(b"]C0HELLO\r"),
    ]
    assert model.sent == [b"]C0HELLO\r"]


def test_fault_at_a_time_uses_the_injected_clock() -> None:
    clock = ManualClock()
    model = ScannerModel(clock=clock, faults=FaultPlan([Fault(FaultKind.DROP_RESPONSE, at_time=10.0)]))
    out = collect(model)
    model.present("A", "]C0")
    clock.advance(10.0)
    model.present("B", "]C0")
    assert out == [Emission(b"]C0A\r")]


def test_bad_options_are_refused() -> None:
    for options in ({"mode": "x"}, {"suffix": "TAB"}, {"gs": "?"}):
        with pytest.raises(ValueError):
            ScannerModel(**options)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ScannerModel().present("A", "d2")


def test_pty_server_sends_scans_and_answers_identify_with_wire_time() -> None:
    async def scenario() -> None:
        control = ControlSurface()
        sim = await scanner_sim.start(control=control, transport="pty", baudrate=9600)
        fd = os.open(sim.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            loop = asyncio.get_running_loop()
            assert control.dispatch({"device": "scanner", "action": "present", "args": {"barcode_text": GS1}})["ok"]
            os.write(fd, SCANNER_TABLE.identify)
            decoder, items = ScanDecoder(), []
            started = loop.time()
            while len(items) < 2 and loop.time() - started < 3:
                await asyncio.sleep(0.01)
                with contextlib.suppress(BlockingIOError):
                    items += decoder.feed(os.read(fd, 4096))
            elapsed = loop.time() - started
            assert items[0] == Scan("]d2", "gs1_datamatrix", True, GS1.encode())
            assert isinstance(items[1], IdentifyReply)
            line_bytes = len(GS1) + 4
            assert elapsed >= line_bytes * 10 / 9600 * 0.9  # paced at 9600 baud
        finally:
            os.close(fd)
            await sim.close()

    asyncio.run(scenario())


def test_tcp_server_sends_scans_and_garbage_is_a_decode_error() -> None:
    async def scenario() -> None:
        control = ControlSurface()
        plan = FaultPlan([Fault(FaultKind.GARBAGE, at_request=1)])
        sim = await scanner_sim.start(control=control, faults=plan, transport="tcp", baudrate=115200)
        assert sim.url.startswith("socket://127.0.0.1:") and sim.env_var == "ADC_SCANNER"
        host, port = sim.url.removeprefix("socket://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await asyncio.sleep(0.05)  # let the server register the client
            sim.model.present("FIRST", "]C0")
            sim.model.present("SECOND", "]C0")
            decoder, items = ScanDecoder(), []
            async with asyncio.timeout(3):
                while len(items) < 2:
                    items += decoder.feed(await reader.read(4096))
            assert isinstance(items[0], ScanDecodeError)
            assert items[1] == Scan("]C0", "code128", False, b"SECOND")
        finally:
            writer.close()
            await sim.close()

    asyncio.run(scenario())
