"""Simulated serial barcode scanner (AIM prefix + data + suffix) on a pseudo-terminal or TCP.

``start(control=..., transport="pty" | "tcp", mode="presentation" | "trigger", suffix="CR" | "LF" | "CRLF",
gs="pass" | "caret" | "drop", baudrate=9600)`` -> RunningSimulator with ``ADC_SCANNER`` = the pty path or
``socket://127.0.0.1:PORT``. Control actions: ``scanner.present(barcode_text, symbology)``,
``scanner.clear_view()``.
"""

from __future__ import annotations

from typing import Any

from simulators.common.clock import SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from simulators.common.running import RunningSimulator
from simulators.scanner.model import Emission, ScannerModel
from simulators.scanner.server import ScannerServer

NAME, ENV_VAR = "scanner", "ADC_SCANNER"


async def start(
    *,
    control: ControlSurface,
    clock: SimClock | None = None,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    transport: str = "pty",
    **device_options: Any,
) -> RunningSimulator:
    if transport not in ("pty", "tcp"):
        raise ValueError(f"transport must be 'pty' or 'tcp', not {transport!r}")
    model = ScannerModel(clock=clock, faults=faults, **device_options)
    server = ScannerServer(model)
    url = server.open_pty() if transport == "pty" else f"socket://{host}:{await server.open_tcp(host, port)}"
    control.register(NAME, model.actions())
    return RunningSimulator(name=NAME, env_var=ENV_VAR, url=url, model=model, close=server.close)


__all__ = ["ENV_VAR", "NAME", "Emission", "ScannerModel", "ScannerServer", "start"]
