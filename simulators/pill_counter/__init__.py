"""Pill counter / counting robot simulator: the deterministic model (``model``) behind a pseudo-terminal or TCP
(``server``). ``start`` is what ``adc sim`` and tests call."""

from __future__ import annotations

from typing import Any

from simulators.common.clock import SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from simulators.common.running import RunningSimulator
from simulators.pill_counter.model import PillCounterModel
from simulators.pill_counter.server import PtyServer, TcpServer

NAME = "pill_counter"
ENV_VAR = "ADC_PILL_COUNTER"


async def start(
    *,
    control: ControlSurface,
    clock: SimClock | None = None,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    transport: str = "tcp",
    baudrate: int = 115_200,
    wire_time: bool = True,
    **device_options: Any,
) -> RunningSimulator:
    """Start the simulator. ``transport="tcp"`` serves ``socket://host:port``; ``"pty"`` serves a pseudo-terminal
    path with wire time at ``baudrate``. ``device_options`` go to ``PillCounterModel`` (rate, hopper, canisters)."""
    options: dict[str, Any] = dict(device_options)
    if clock is not None:
        options["clock"] = clock
    if faults is not None:
        options["faults"] = faults
    model = PillCounterModel(**options)
    control.register(NAME, model.actions())
    if transport == "tcp":
        tcp = TcpServer(model)
        await tcp.start(host, port)
        url = f"socket://{host}:{tcp.port}"
        return RunningSimulator(NAME, ENV_VAR, url, model, tcp.close)
    if transport == "pty":
        pty = PtyServer(model, baudrate=baudrate, wire_time=wire_time)
        path = await pty.start()
        return RunningSimulator(NAME, ENV_VAR, path, model, pty.close)
    raise ValueError(f"transport must be 'tcp' or 'pty', not {transport!r}")


__all__ = ["ENV_VAR", "NAME", "PillCounterModel", "start"]
