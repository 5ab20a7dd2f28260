"""``python -m simulators`` (what ``adc sim`` runs): start every device simulator on the loopback interface.

Once all of them listen it prints one ``ADC_<DEVICE>=<url>`` line per device, ready to paste into the
controller's environment, plus ``ADC_SIM_CONTROL=tcp://...`` for the physical-world control socket; then it runs
until SIGINT or SIGTERM and closes everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from simulators import io_board, label_printer, pill_counter, scanner
from simulators.common.clock import RealClock
from simulators.common.control import ControlSurface
from simulators.common.running import RunningSimulator
from simulators.scene import camera


async def start_all(host: str, serial_transport: str, io_transport: str, control_port: int) -> None:
    control = ControlSurface()
    clock = RealClock()
    running: list[RunningSimulator] = []
    try:
        running.append(await io_board.start(control=control, clock=clock, host=host, transport=io_transport))
        running.append(await pill_counter.start(control=control, clock=clock, host=host, transport=serial_transport))
        running.append(await scanner.start(control=control, clock=clock, host=host, transport=serial_transport))
        running.append(await label_printer.start(control=control, clock=clock, host=host))
        running.append(await camera.start(control=control, clock=clock, host=host))
        bound = await control.serve(host, control_port)
        for simulator in running:
            print(f"{simulator.env_var}={simulator.url}", flush=True)
        print(f"ADC_SIM_CONTROL=tcp://{host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await control.close()
        for simulator in reversed(running):
            with contextlib.suppress(Exception):  # close the rest even if one fails
                await simulator.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--serial", choices=("pty", "tcp"), default="pty", help="serve serial devices on")
    parser.add_argument("--io-board", choices=("tcp", "rtu"), default="tcp", help="Modbus TCP or RTU on a pty")
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(start_all(args.host, args.serial, args.io_board, args.control_port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
