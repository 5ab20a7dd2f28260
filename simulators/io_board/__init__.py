"""Cabinet I/O board simulator: the deterministic model (``model.py``) on Modbus TCP and on Modbus RTU over a
pseudo-terminal (``server.py``). ``start`` is what ``adc sim`` and tests call."""

from __future__ import annotations

from typing import Any

from firmware_protocols.io_board.register_map import CabinetLayout
from simulators.common.clock import SimClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from simulators.common.running import RunningSimulator
from simulators.io_board.model import IoBoardModel
from simulators.io_board.server import RtuPtyServer, TcpServer

ENV_VAR = "ADC_IO_BOARD"

# The demo cabinet's hardware (controller/data/demo_cabinet.toml): six drawers of up to 12 pockets; drawer 2's
# eleven pockets and drawer 3's four single-dose pockets have lid locks; none is motorised.
# tests/test_demo_layout.py keeps the two in step.
DEMO_LAYOUT = CabinetLayout(
    drawer_count=6,
    pockets_per_drawer=12,
    lidded=frozenset({(2, pocket) for pocket in range(1, 12)} | {(3, pocket) for pocket in range(1, 5)}),
)


async def start(
    *,
    control: ControlSurface,
    clock: SimClock | None = None,
    faults: FaultPlan | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    transport: str = "tcp",
    unit: int = 1,
    baudrate: int = 115_200,
    layout: CabinetLayout | None = None,
    protocol_version: int = 2,
    **_options: Any,
) -> RunningSimulator:
    """Start the board on ``transport`` "tcp" (``tcp://host:port?unit=N``) or "rtu" (``rtu:///dev/pts/N?...``).

    ``protocol_version`` 2 (the default) counts openings in registers; 1 is a board of the first register map."""
    model = IoBoardModel(layout or DEMO_LAYOUT, clock=clock, faults=faults, protocol_version=protocol_version)
    model.register_actions(control)
    if transport == "rtu":
        rtu = RtuPtyServer(model, unit, baudrate)
        await rtu.start()
        url = f"rtu://{rtu.path}?unit={unit}&baud={baudrate}"
        return RunningSimulator("io_board", ENV_VAR, url, model, rtu.close)
    if transport != "tcp":
        raise ValueError(f"transport must be 'tcp' or 'rtu', not {transport!r}")
    tcp = TcpServer(model, unit, host, port)
    await tcp.start()
    return RunningSimulator("io_board", ENV_VAR, f"tcp://{host}:{tcp.port}?unit={unit}", model, tcp.close)


__all__ = ["DEMO_LAYOUT", "ENV_VAR", "IoBoardModel", "start"]
