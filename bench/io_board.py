"""I/O board benchmark: driver round trip against the raw pymodbus client on the same simulator, and the poller's
CPU share at 10 Hz for a 12-drawer cabinet.

Round trip: ``driver.snapshot()`` (one 96-register read, decoded into typed, frozen dataclasses) against
``AsyncModbusTcpClient.read_holding_registers`` of the same span on the same simulator, interleaved so both see
the same conditions; p50 and p99 of each, "ratio" = driver / raw (1.00 = no overhead; target <= 1.25).
The simulator runs in a child process (``python -m simulators.io_board``) so that its CPU is not counted against
the controller's. Poller CPU: ``time.process_time`` of this process while a 10 Hz BoardPoller runs for a few
seconds (target < 5 % of one core).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from statistics import quantiles

from pymodbus.client import AsyncModbusTcpClient
from rich.console import Console
from rich.table import Table

from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.modbus_transport import parse_endpoint
from controller.hardware.poller import BoardPoller, PollSuccess


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = quantiles(samples, n=100)
    return cuts[49], cuts[98]


async def _measure(url: str, rounds: int, poll_seconds: float) -> dict[str, float]:
    endpoint = parse_endpoint(url)
    raw = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1, retries=0)
    await raw.connect()
    driver = await IoBoardDriver.connect(url)
    first, count = driver.map.snapshot_span(driver.identity.drawer_count)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(50):  # warm up both
            await driver.snapshot()
            await raw.read_holding_registers(first, count=count, device_id=endpoint.unit)
        for _ in range(rounds):
            started = time.perf_counter()
            await driver.snapshot()
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await raw.read_holding_registers(first, count=count, device_id=endpoint.unit)
            theirs.append(time.perf_counter() - started)
            assert not response.isError()
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        async with BoardPoller(driver, period_s=0.1) as poller:
            await asyncio.sleep(poll_seconds)
        cpu = time.process_time() - cpu_started
        wall = time.perf_counter() - wall_started
        assert isinstance(poller.latest, PollSuccess)
    finally:
        raw.close()
        await driver.close()
    driver_p50, driver_p99 = _percentiles(ours)
    raw_p50, raw_p99 = _percentiles(theirs)
    return {
        "driver_p50": driver_p50,
        "driver_p99": driver_p99,
        "raw_p50": raw_p50,
        "raw_p99": raw_p99,
        "poll_reads": poller.reads,
        "poll_rate": poller.reads / wall,
        "poll_cpu_share": cpu / wall,
        "drawers": driver.identity.drawer_count,
    }


def run(console: Console, rounds: int = 2000, poll_seconds: float = 5.0) -> Table:
    console.print("[bold]I/O board[/]: starting the simulator (12 drawers, Modbus TCP) in a child process")
    child = subprocess.Popen(
        [sys.executable, "-m", "simulators.io_board", "--drawers", "12"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.startswith("ADC_IO_BOARD="):
            raise RuntimeError(f"simulator did not start: {line!r}")
        result = asyncio.run(_measure(line.split("=", 1)[1], rounds, poll_seconds))
    finally:
        child.terminate()
        child.wait(timeout=10)
    table = Table(title=f"I/O board over Modbus TCP, {result['drawers']:.0f} drawers")
    for column in ("measure", "ours", "raw pymodbus", "ratio (ours/raw)", "target"):
        table.add_column(column)
    for name in ("p50", "p99"):
        ours, raw = result[f"driver_{name}"], result[f"raw_{name}"]
        table.add_row(
            f"snapshot round trip {name}", f"{ours * 1e3:.3f} ms", f"{raw * 1e3:.3f} ms", f"{ours / raw:.2f}", "<= 1.25"
        )
    table.add_row(
        "poller CPU at 10 Hz",
        f"{result['poll_cpu_share'] * 100:.2f} % of a core ({result['poll_rate']:.1f} Hz)",
        "—",
        "—",
        "< 5 %",
    )
    return table


if __name__ == "__main__":
    console = Console(width=110)
    console.print(run(console))
