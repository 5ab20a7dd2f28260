"""Label printer simulator: the pure model (keeps every label, holds labels on faults) and its TCP server."""

from __future__ import annotations

import asyncio

from firmware_protocols.label_printer import (
    ZplCommand,
    ZplLabel,
    label_fields,
    parse_host_identification,
    parse_host_status,
)
from simulators import label_printer as printer_sim
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.label_printer.model import LabelPrinterModel, Reply

LABEL = ZplLabel(b"^XA^FO10,10^FH^FDNDC 0069-4200-30^FS^XZ")
HS, HI, JA = ZplCommand("~HS"), ZplCommand("~HI"), ZplCommand("~JA")


def test_keeps_every_printed_label_and_answers_status_and_identify() -> None:
    model = LabelPrinterModel()
    assert model.handle(LABEL) == Reply()
    assert model.handle(LABEL) == Reply()
    assert model.labels == [LABEL.raw, LABEL.raw]
    assert parse_host_status(model.handle(HS).data).faults() == ()
    assert parse_host_identification(model.handle(HI).data).is_simulator()


def test_paper_out_holds_the_label_until_paper_is_loaded_or_cancelled() -> None:
    model = LabelPrinterModel()
    model.run_out_of_paper()
    model.handle(LABEL)
    status = parse_host_status(model.handle(HS).data)
    assert model.labels == [] and status.paper_out and status.formats_in_buffer == 1
    model.load_paper()
    assert model.labels == [LABEL.raw]
    model.open_head()
    model.handle(LABEL)
    model.handle(JA)
    model.close_head()
    assert model.labels == [LABEL.raw] and model.received == [LABEL.raw, LABEL.raw]


def test_fault_plan_paper_out_drop_and_disconnect() -> None:
    plan = FaultPlan(
        [
            Fault(FaultKind.DROP_RESPONSE, at_request=1),
            Fault(FaultKind.PAPER_OUT, at_request=2),
            Fault(FaultKind.DISCONNECT, at_request=4),
        ]
    )
    model = LabelPrinterModel(faults=plan)
    assert model.handle(HS) == Reply()  # dropped
    assert model.handle(LABEL) == Reply()  # paper runs out as it arrives
    assert parse_host_status(model.handle(HS).data).paper_out
    assert model.handle(LABEL) == Reply(disconnect=True)
    assert model.labels == [] and model.received == [LABEL.raw]


def test_tcp_server_prints_what_arrives_in_pieces_and_answers() -> None:
    async def scenario() -> None:
        control = ControlSurface()
        sim = await printer_sim.start(control=control)
        assert sim.url.startswith("tcp://127.0.0.1:") and sim.env_var == "ADC_LABEL_PRINTER"
        host, port = sim.url.removeprefix("tcp://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for piece in (b"^XA^FO10,10^FH^FD", b"Rx _5E1^FS", b"^XZ~H", b"S"):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.01)
            async with asyncio.timeout(3):
                answer = b"".join([await reader.readuntil(b"\n") for _ in range(3)])
            assert parse_host_status(answer).formats_in_buffer == 0
            assert [label_fields(label) for label in sim.model.labels] == [["Rx ^1"]]
            assert control.dispatch({"device": "label_printer", "action": "printed_count"}) == {"ok": True, "result": 1}
        finally:
            writer.close()
            await sim.close()

    asyncio.run(scenario())
