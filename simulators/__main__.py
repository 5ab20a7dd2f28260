"""``python -m simulators`` (what ``adc sim`` runs): start every device simulator on the loopback interface.

Once all of them listen it prints one ``ADC_<DEVICE>=<url>`` line per device, ready to paste into the
controller's environment, plus ``ADC_SIM_CONTROL=tcp://...`` for the physical-world control socket; then it runs
until SIGINT or SIGTERM and closes everything: each server gets ``CLOSE_EACH_S``, and ``STOP_BUDGET_S`` after the
signal the process ends whatever it is still waiting for (exit status 1), so a stuck close never keeps it alive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable

from simulators import io_board, label_printer, pill_counter, scanner
from simulators.common.clock import RealClock
from simulators.common.control import ControlSurface
from simulators.common.running import RunningSimulator
from simulators.scene import camera

STOP_BUDGET_S = 3.0  # from the stop signal to the end of the process (adc serve and adc sim kill it at 3.5 s)
CLOSE_EACH_S = 0.5  # one server's close (each takes milliseconds); one that takes longer is left to the exit


async def start_all(
    host: str, serial_transport: str, io_transport: str, control_port: int, io_protocol: int = 2
) -> None:
    control = ControlSurface()
    clock = RealClock()
    running: list[RunningSimulator] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before anything starts: a stop while starting is not lost
        loop.add_signal_handler(signum, _stop_requested, stop)
    try:
        running.append(
            await io_board.start(
                control=control, clock=clock, host=host, transport=io_transport, protocol_version=io_protocol
            )
        )
        running.append(await pill_counter.start(control=control, clock=clock, host=host, transport=serial_transport))
        running.append(await scanner.start(control=control, clock=clock, host=host, transport=serial_transport))
        running.append(await label_printer.start(control=control, clock=clock, host=host))
        running.append(await camera.start(control=control, clock=clock, host=host))
        bound = await control.serve(host, control_port)
        if not stop.is_set():  # stopped while starting: nothing to announce
            for simulator in running:
                print(f"{simulator.env_var}={simulator.url}", flush=True)
            print(f"ADC_SIM_CONTROL=tcp://{host}:{bound}", flush=True)
        await stop.wait()
    finally:
        await _close_all(control, running)


def _stop_requested(stop: asyncio.Event) -> None:
    """SIGINT or SIGTERM: stop, and make sure of it: a watchdog ends the process ``STOP_BUDGET_S`` from now."""
    if stop.is_set():
        return  # one stop is enough (Ctrl-C in a terminal reaches this process and ``adc sim``, which passes it on)
    stop.set()
    watchdog = threading.Timer(STOP_BUDGET_S, _stop_overdue)
    watchdog.daemon = True
    watchdog.start()


def _stop_overdue() -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"python -m simulators: not closed within {STOP_BUDGET_S:g} s: exiting now\n".encode())
    os._exit(1)


async def _close_all(control: ControlSurface, running: list[RunningSimulator]) -> None:
    """The control socket first (no more physical-world actions), then the simulators, newest first. A close that
    fails does not stop the others; one still running after ``CLOSE_EACH_S`` is named on stderr and given up."""
    closes: list[tuple[str, Callable[[], Awaitable[None]]]] = [("control", control.close)]
    closes += [(simulator.name, simulator.close) for simulator in reversed(running)]
    for name, close in closes:
        try:
            async with asyncio.timeout(CLOSE_EACH_S):
                await close()
        except TimeoutError:
            print(f"python -m simulators: {name} did not close within {CLOSE_EACH_S:g} s", file=sys.stderr)
        except Exception as exc:  # close the rest even if one fails
            print(f"python -m simulators: closing {name} failed: {exc!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--serial", choices=("pty", "tcp"), default="pty", help="serve serial devices on")
    parser.add_argument("--io-board", choices=("tcp", "rtu"), default="tcp", help="Modbus TCP or RTU on a pty")
    parser.add_argument(
        "--io-board-protocol", type=int, choices=(1, 2), default=2, help="I/O board register map version to serve"
    )
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(start_all(args.host, args.serial, args.io_board, args.control_port, args.io_board_protocol))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
