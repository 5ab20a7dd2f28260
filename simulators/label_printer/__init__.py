"""Simulated ZPL II label printer on TCP that keeps every label it printed.

``start(control=...)`` -> RunningSimulator with ``ADC_LABEL_PRINTER`` = ``tcp://127.0.0.1:PORT``. Control
actions: ``label_printer.open_head``, ``close_head``, ``run_out_of_paper``, ``load_paper``, ``pause``, ``resume``,
``printed_count``.
"""

from __future__ import annotations

from typing import Any

from simulators.common.clock import SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from simulators.common.running import RunningSimulator
from simulators.label_printer.model import LabelPrinterModel, Reply
from simulators.label_printer.server import LabelPrinterServer

NAME, ENV_VAR = "label_printer", "ADC_LABEL_PRINTER"


async def start(
    *,
    control: ControlSurface,
    clock: SimClock | None = None,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    **device_options: Any,
) -> RunningSimulator:
    model = LabelPrinterModel(clock=clock, faults=faults, **device_options)
    server = LabelPrinterServer(model)
    bound = await server.open(host, port)
    control.register(NAME, model.actions())
    return RunningSimulator(name=NAME, env_var=ENV_VAR, url=f"tcp://{host}:{bound}", model=model, close=server.close)


__all__ = ["ENV_VAR", "NAME", "LabelPrinterModel", "LabelPrinterServer", "Reply", "start"]
