"""One contract for every LabelPrinter: the in-memory fake, and the driver against the ZPL simulator on TCP.
A fault must never look like a printed label: refused, cancelled, or a typed communication error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date

import pytest

from controller.errors import CommunicationError, ConfigurationError, DeviceFaultError
from controller.hardware.label_printer.driver import LabelPrinterDriver
from controller.hardware.label_printer.fake import FakeLabelPrinter
from controller.hardware.label_printer.interface import LabelPrinter
from firmware_protocols.label_printer import VialLabel, build_vial_label, label_fields
from simulators import label_printer as printer_sim
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.label_printer.model import LabelPrinterModel

BACKENDS = ["fake", "sim-tcp"]
VIAL = VialLabel(
    drug_name="Oxycodone HCl",
    strength="5 mg",
    ndc="0406-0552-01",
    lot="L2301",
    expiry=date(2027, 3, 31),
    count=30,
    unit="tablets",
    patient="Doe, Jane",
    rx_number="RX1234567",
)
ZPL = build_vial_label(VIAL)


@dataclass
class Rig:
    printer: LabelPrinter
    printed: Callable[[], list[bytes]]
    set_flag: Callable[[str, bool], None]  # a person opens the head, paper runs out...
    fail_next: Callable[[str], None]  # the next exchange fails with this comm code
    model: LabelPrinterModel | None = None
    plan: FaultPlan | None = None


@asynccontextmanager
async def rig(backend: str) -> AsyncIterator[Rig]:
    if backend == "fake":
        fake = FakeLabelPrinter()
        yield Rig(
            fake,
            lambda: fake.labels,
            lambda flag, value: fake.set_flags(**{flag: value}),
            lambda code: fake.fail_next(CommunicationError(code, "injected")),
        )
        return
    plan = FaultPlan()
    sim = await printer_sim.start(control=ControlSurface(), faults=plan)
    model: LabelPrinterModel = sim.model
    driver = await LabelPrinterDriver.connect(sim.url, timeout=0.5, confirm_timeout=2)

    def set_flag(flag: str, value: bool) -> None:
        setattr(model, flag, value)

    def fail_next(code: str) -> None:
        kind = {"comm.timeout": FaultKind.DROP_RESPONSE, "comm.disconnected": FaultKind.DISCONNECT}[code]
        plan.add(Fault(kind, at_request=model.requests + 1))

    try:
        yield Rig(driver, lambda: model.labels, set_flag, fail_next, model, plan)
    finally:
        await driver.close()
        await sim.close()


def run(backend: str, scenario: Callable[[Rig], Awaitable[None]]) -> None:
    async def main() -> None:
        async with rig(backend) as r:
            await scenario(r)

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_identify_and_ready_status(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        identity = await r.printer.identify()
        assert identity.is_simulator and identity.model
        status = await r.printer.status()
        assert status.faults() == () and status.formats_in_buffer == 0

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_print_label_is_confirmed_and_recorded(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        await r.printer.print_label(ZPL)
        await r.printer.print_label(ZPL)
        assert r.printed() == [ZPL, ZPL]
        assert "NDC 0406-0552-01  Qty 30 tablets" in label_fields(r.printed()[0])

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("flag", "title"), [("paper_out", "paper out"), ("head_open", "print head open"), ("paused", "printer paused")]
)
def test_printer_fault_refuses_before_sending(backend: str, flag: str, title: str) -> None:
    async def scenario(r: Rig) -> None:
        r.set_flag(flag, True)
        with pytest.raises(DeviceFaultError) as caught:
            await r.printer.print_label(ZPL)
        assert caught.value.code == "device.printer_fault"
        assert title in caught.value.detail and caught.value.context["flags"] == [flag]
        assert r.printed() == []
        r.set_flag(flag, False)
        await r.printer.print_label(ZPL)
        assert r.printed() == [ZPL]

    run(backend, scenario)


def test_paper_running_out_during_the_label_cancels_it() -> None:
    async def scenario(r: Rig) -> None:
        assert r.model is not None and r.plan is not None
        r.plan.add(Fault(FaultKind.PAPER_OUT, at_request=r.model.requests + 2))  # pre-check ~HS, then the label
        with pytest.raises(DeviceFaultError) as caught:
            await r.printer.print_label(ZPL)
        assert caught.value.code == "device.printer_fault" and "paper out" in caught.value.detail
        assert r.model.received == [ZPL] and r.model.labels == []
        r.model.load_paper()  # the cancelled label must not come out afterwards
        await asyncio.sleep(0.05)
        assert r.model.labels == [] and r.model.buffered == []

    run("sim-tcp", scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_answer_to_status_is_a_timeout_and_the_next_call_works(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.fail_next("comm.timeout")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(CommunicationError) as caught:
            await r.printer.print_label(ZPL)
        assert caught.value.code == "comm.timeout" and loop.time() - started < 2
        assert r.printed() == []
        await r.printer.print_label(ZPL)
        assert r.printed() == [ZPL]

    run(backend, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_disconnect_is_comm_disconnected_and_the_next_call_reconnects(backend: str) -> None:
    async def scenario(r: Rig) -> None:
        r.fail_next("comm.disconnected")
        with pytest.raises(CommunicationError) as caught:
            await r.printer.status()
        assert caught.value.code == "comm.disconnected"
        assert (await r.printer.status()).faults() == ()

    run(backend, scenario)


def test_disconnect_while_the_label_is_sent_is_never_a_success() -> None:
    async def scenario(r: Rig) -> None:
        assert r.model is not None and r.plan is not None
        r.plan.add(Fault(FaultKind.DISCONNECT, at_request=r.model.requests + 2))
        with pytest.raises(CommunicationError) as caught:
            await r.printer.print_label(ZPL)
        assert caught.value.code == "comm.disconnected"
        assert r.model.labels == []

    run("sim-tcp", scenario)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("zpl", [b"", b"not zpl", b"^XA^FDa^FS", ZPL + ZPL, b"~HS"])
def test_print_label_takes_exactly_one_label(backend: str, zpl: bytes) -> None:
    async def scenario(r: Rig) -> None:
        with pytest.raises(ValueError):
            await r.printer.print_label(zpl)
        assert r.printed() == []

    run(backend, scenario)


async def _garbled_printer(reply: bytes) -> tuple[asyncio.Server, str]:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(64):
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("reply", [b"\x02nonsense\x03\r\n" * 3, b"junk\r\n" * 3])
def test_garbled_status_answer_is_comm_framing(reply: bytes) -> None:
    async def main() -> None:
        server, url = await _garbled_printer(reply)
        driver = await LabelPrinterDriver.connect(url, timeout=0.5)
        try:
            with pytest.raises(CommunicationError) as caught:
                await driver.status()
            assert caught.value.code == "comm.framing"
        finally:
            await driver.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_bad_endpoints() -> None:
    async def main() -> None:
        for url in ("http://127.0.0.1:9100", "tcp://", "tcp://host:notaport"):
            with pytest.raises(ConfigurationError):
                await LabelPrinterDriver.connect(url)
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(CommunicationError) as caught:
            await LabelPrinterDriver.connect(f"tcp://127.0.0.1:{port}", timeout=1)
        assert caught.value.code == "comm.disconnected"

    asyncio.run(main())


def test_identify_reads_is_simulator_from_the_model_string() -> None:
    async def main() -> None:
        sim = await printer_sim.start(control=ControlSurface(), model="ZD421-300dpi")
        driver = await LabelPrinterDriver.connect(sim.url)
        try:
            identity = await driver.identify()
            assert identity.model == "ZD421-300dpi" and not identity.is_simulator
        finally:
            await driver.close()
            await sim.close()

    asyncio.run(main())


def test_control_surface_actions_drive_the_printer() -> None:
    async def main() -> None:
        control = ControlSurface()
        sim = await printer_sim.start(control=control)
        driver = await LabelPrinterDriver.connect(sim.url)
        try:
            assert control.dispatch({"device": "label_printer", "action": "open_head"})["ok"]
            assert (await driver.status()).head_open
            control.dispatch({"device": "label_printer", "action": "close_head"})
            await driver.print_label(ZPL)
            assert control.dispatch({"device": "label_printer", "action": "printed_count"})["result"] == 1
        finally:
            await driver.close()
            await sim.close()

    asyncio.run(main())
