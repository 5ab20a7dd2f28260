"""Pill counter benchmark: STATUS request/response round trips through the driver against the simulator.

Three links: a pseudo-terminal with the wire time of 115200 8N1 simulated by the simulator (what a real RS-232
counter costs), the same pseudo-terminal without wire time (the software alone: driver, SerialLink executor,
decoder, model), and TCP on 127.0.0.1. Each is compared with the theoretical wire time of the bytes exchanged
(request + reply at 10 bits a byte): ratio = measured p50 / wire time, so 1.0 would be a perfect serial line.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from statistics import quantiles

from rich.console import Console
from rich.table import Table

from controller.hardware.pill_counter.driver import PillCounterDriver
from firmware_protocols.pill_counter import codec
from simulators import pill_counter as sim
from simulators.common.control import ControlSurface
from simulators.common.wire import wire_seconds

BAUDRATE = codec.TABLE.protocol.baudrate
STATUS_BYTES = len(codec.encode_request(1, codec.Status())) + len(
    codec.encode_reply(1, codec.StatusReply(codec.CounterState.IDLE, 0, 0, 0))
)


@dataclass
class Row:
    link: str
    samples: list[float]

    @property
    def p50(self) -> float:
        return quantiles(self.samples, n=100)[49]

    @property
    def p99(self) -> float:
        return quantiles(self.samples, n=100)[98]


async def _measure(transport: str, wire_time: bool, rounds: int) -> list[float]:
    running = await sim.start(control=ControlSurface(), transport=transport, wire_time=wire_time, baudrate=BAUDRATE)
    try:
        driver = await PillCounterDriver.connect(running.url)
        try:
            for _ in range(20):  # warm up the executor thread and the loop
                await driver.status()
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                await driver.status()
                samples.append(time.perf_counter() - started)
            return samples
        finally:
            await driver.close()
    finally:
        await running.close()


def measure(rounds: int = 500) -> list[Row]:
    cases = [
        ("pty, 115200 8N1 wire time", "pty", True),
        ("pty, no wire time", "pty", False),
        ("TCP 127.0.0.1", "tcp", False),
    ]
    return [Row(name, asyncio.run(_measure(transport, wire, rounds))) for name, transport, wire in cases]


def table(rows: list[Row]) -> Table:
    wire = wire_seconds(STATUS_BYTES, BAUDRATE)
    out = Table(
        title=f"Pill counter STATUS round trip ({STATUS_BYTES} bytes on the wire = {wire * 1e3:.2f} ms at {BAUDRATE})"
    )
    for column in ("link", "n", "p50 ms", "p99 ms", "p50 / wire time", "p99 / wire time"):
        out.add_column(column, justify="left" if column == "link" else "right")
    for row in rows:
        out.add_row(
            row.link,
            str(len(row.samples)),
            f"{row.p50 * 1e3:.3f}",
            f"{row.p99 * 1e3:.3f}",
            f"{row.p50 / wire:.2f}",
            f"{row.p99 / wire:.2f}",
        )
    return out


def run(console: Console, rounds: int = 500) -> Table:
    console.log(f"pill counter: {rounds} STATUS round trips per link")
    return table(measure(rounds))


if __name__ == "__main__":
    _console = Console(width=110)
    _console.print(run(_console))
