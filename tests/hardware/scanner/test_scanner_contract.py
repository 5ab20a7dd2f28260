"""One contract for every Scanner: the in-memory fake, and the driver against the simulator on a pseudo-terminal
and on TCP. Every fault the simulator honours must surface as its typed error, never as a scan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from controller.errors import CommunicationError, ConfigurationError
from controller.hardware.scanner.driver import ScannerDriver
from controller.hardware.scanner.fake import FakeScanner
from controller.hardware.scanner.interface import Scanner
from simulators import scanner as scanner_sim
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.scanner.model import ScannerModel

BACKENDS = ["fake", "sim-pty", "sim-tcp"]
PHARMA = "0108903819987659\x1d17310630\x1d10BNav4Cam2"
FAULT_ERRORS = {
    FaultKind.GARBAGE: "comm.framing",
    FaultKind.TRUNCATE: "comm.framing",
    FaultKind.DROP_RESPONSE: "comm.timeout",
    FaultKind.DISCONNECT: "comm.disconnected",
}


@dataclass
class Rig:
    scanner: Scanner
    present: Callable[[str, str], None]
    inject: Callable[[FaultKind], None]  # the next scan (or answer) suffers this fault
    model: ScannerModel | None = None


@asynccontextmanager
async def rig(backend: str, **options: Any) -> AsyncIterator[Rig]:
    if backend == "fake":
        fake = FakeScanner(mode=options.get("mode", "presentation"))

        def fake_inject(kind: FaultKind) -> None:
            fake.fail_next(CommunicationError(FAULT_ERRORS[kind], f"injected {kind}"))

        yield Rig(fake, fake.present, fake_inject)
        await fake.close()
        return
    plan = FaultPlan()
    sim = await scanner_sim.start(
        control=ControlSurface(), faults=plan, transport=backend.removeprefix("sim-"), baudrate=115200, **options
    )
    model: ScannerModel = sim.model
    driver = await ScannerDriver.connect(sim.url, baudrate=115200, suffix=options.get("suffix", "CR"))

    def sim_inject(kind: FaultKind) -> None:
        plan.add(Fault(kind, at_request=model.requests + 1))

    try:
        if backend == "sim-tcp":
            await asyncio.sleep(0.05)  # the server must have accepted the connection before the first scan
        yield Rig(driver, model.present, sim_inject, model)
    finally:
        await driver.close()
        await sim.close()


def run(backend: str, scenario: Callable[[Rig], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with rig(backend, **options) as r:
            await scenario(r)

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_identify_reports_simulator_from_the_device(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        identity = await r.scanner.identify()
        assert identity.is_simulator and identity.model and identity.firmware

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix", ["CR", "LF", "CRLF"])
def test_presented_scans_arrive_in_order_with_group_separators(backend: str, suffix: str) -> None:
    async def scenario(r: Rig) -> None:
        r.present(PHARMA, "]d2")
        r.present("0312547701310", "]E0")
        first = await r.scanner.next_scan(timeout=2)
        second = await r.scanner.next_scan(timeout=2)
        assert (first.symbology, first.is_gs1, first.text) == ("gs1_datamatrix", True, PHARMA)
        assert (second.symbology_id, second.text) == ("]E0", "0312547701310")

    run(backend, scenario, suffix=suffix) if backend != "fake" else run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trigger_mode_reads_only_when_triggered(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.present("RX1234", "]C0")
        with pytest.raises(CommunicationError) as caught:
            await r.scanner.next_scan(timeout=0.2)
        assert caught.value.code == "comm.timeout"
        await r.scanner.trigger()
        assert (await r.scanner.next_scan(timeout=2)).text == "RX1234"
        await r.scanner.untrigger()

    run(backend, scenario, mode="trigger")


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_scan_is_a_timeout_without_hanging(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(CommunicationError) as caught:
            await r.scanner.next_scan(timeout=0.3)
        assert caught.value.code == "comm.timeout"
        assert loop.time() - started < 2.0

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", [FaultKind.GARBAGE, FaultKind.TRUNCATE, FaultKind.DROP_RESPONSE])
def test_a_damaged_or_lost_scan_is_a_typed_error_and_the_next_scan_is_good(backend: str, kind: FaultKind) -> None:
    async def scenario(r: Rig) -> None:
        r.inject(kind)
        r.present(PHARMA, "]d2")
        with pytest.raises(CommunicationError) as caught:
            await r.scanner.next_scan(timeout=0.5)
        assert caught.value.code == FAULT_ERRORS[kind]
        r.present("AFTER", "]C0")
        assert (await r.scanner.next_scan(timeout=2)).text == "AFTER"

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_disconnect_is_comm_disconnected(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.inject(FaultKind.DISCONNECT)
        r.present(PHARMA, "]d2")
        with pytest.raises(CommunicationError) as caught:
            await r.scanner.next_scan(timeout=2)
        assert caught.value.code == "comm.disconnected"

    run(backend, scenario)


@pytest.mark.parametrize("backend", ["sim-pty", "sim-tcp"])
def test_dropped_identify_answer_is_a_timeout(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.inject(FaultKind.DROP_RESPONSE)
        with pytest.raises(CommunicationError) as caught:
            await r.scanner.identify()
        assert caught.value.code == "comm.timeout"
        assert (await r.scanner.identify()).is_simulator

    run(backend, scenario)


@pytest.mark.parametrize("backend", ["sim-pty", "sim-tcp"])
def test_scans_read_while_identifying_are_kept_for_next_scan(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.present("EARLY", "]C0")
        await asyncio.sleep(0.05)
        assert (await r.scanner.identify()).is_simulator
        assert (await r.scanner.next_scan(timeout=1)).text == "EARLY"

    run(backend, scenario)


def test_caret_group_separator_is_restored_by_the_driver() -> None:
    async def main() -> None:
        sim = await scanner_sim.start(control=ControlSurface(), transport="tcp", gs="caret", baudrate=115200)
        driver = await ScannerDriver.connect(sim.url, baudrate=115200, gs_substitute=b"^]")
        try:
            await asyncio.sleep(0.05)
            sim.model.present(PHARMA, "]d2")
            assert (await driver.next_scan(timeout=2)).data == PHARMA.encode()
        finally:
            await driver.close()
            await sim.close()

    asyncio.run(main())


def test_bad_endpoints() -> None:
    async def main() -> None:
        with pytest.raises(ConfigurationError) as caught:
            await ScannerDriver.connect("socket://no-port-here", timeout=1)
        assert caught.value.code == "comm.bad_endpoint"
        with pytest.raises(CommunicationError) as refused:
            await ScannerDriver.connect("/dev/does-not-exist-scanner", timeout=1)
        assert refused.value.code == "comm.disconnected"

    asyncio.run(main())
