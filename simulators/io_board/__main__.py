"""``python -m simulators.io_board [--transport tcp|rtu] [--drawers N] [--protocol 1|2]``: one I/O board
simulator, alone.

Prints ``ADC_IO_BOARD=<url>`` once it listens, then serves until interrupted (``adc sim`` runs every device).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from firmware_protocols.io_board.register_map import CabinetLayout
from simulators.common.control import ControlSurface
from simulators.io_board import start


async def serve(transport: str, drawers: int, pockets: int, protocol_version: int = 2) -> None:
    control = ControlSurface()
    sim = await start(
        control=control,
        transport=transport,
        layout=CabinetLayout(drawer_count=drawers, pockets_per_drawer=pockets),
        protocol_version=protocol_version,
    )
    control_port = await control.serve()
    print(f"{sim.env_var}={sim.url}", flush=True)
    print(f"ADC_SIM_CONTROL=tcp://127.0.0.1:{control_port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await control.close()
        await sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.io_board", description=__doc__)
    parser.add_argument("--transport", choices=["tcp", "rtu"], default="tcp")
    parser.add_argument("--drawers", type=int, default=12)
    parser.add_argument("--pockets", type=int, default=8)
    parser.add_argument("--protocol", type=int, choices=[1, 2], default=2, help="register map version to serve")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.transport, args.drawers, args.pockets, args.protocol))


if __name__ == "__main__":
    main()
