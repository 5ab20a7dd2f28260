"""Pull benchmark: credentials submitted to the unlock on the wire, and controller time per complete pull.

The I/O board simulator runs on Modbus RTU over a pseudo-terminal (it adds the 115200-baud wire time itself);
the engine drives it through the real driver, on a fresh SQLite store seeded with default-cost argon2 PINs.
Each run: ``Login`` (argon2 at the default cost, off the event loop), ``StartPull``, ``SelectItem`` (a schedule II
order), ``EnterCount`` (blind count) -> unlock; "login -> unlock" runs from submitting the PIN to the moment the
simulated board sees the drawer latch released, with no human delay between the commands. Then the person opens
the drawer and lid, takes one, closes both (instant, in-process), the engine polls between each step and records
the removal; "controller time per pull" is the wall time of everything the controller did for the whole pull
(commands, polls, hardware round trips, commits), the simulated human's own actions excluded. The same pulls run
again on a version 1 board, to show what reading and acknowledging the opening counters costs on the bus.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any

from rich.console import Console
from rich.table import Table

from controller.bootstrap.cabinet import compose_cabinet
from controller.domain.clock import SystemClock
from controller.domain.credentials import CredentialHasher
from controller.engine.commands import EnterCount, Login, Logout, SelectItem, StartPull, Take
from controller.engine.context import Devices
from controller.hardware.io_board.driver import IoBoardDriver
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import list_pockets
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from firmware_protocols.io_board.register_map import CabinetLayout
from simulators import io_board as io_board_sim
from simulators.common.control import ControlSurface

CABINET = "CAB-B"
MORPHINE = "MORPHINE-4MG-ML-CARP"
LAYOUT = CabinetLayout(drawer_count=4, pockets_per_drawer=4, lidded=frozenset({(2, 1), (2, 2)}))


def _layout(units: int) -> dict[str, Any]:
    return {
        "loaded_by": "PHARM1",
        "care_area": {"id": "ICU", "name": "ICU", "profiled": True},
        "cabinet": {"id": CABINET, "name": "Bench station"},
        "user": [{"id": "NURSE1", "name": "Nurse", "roles": ["nurse"], "pin": "1111"}],
        "drawer": [
            {"id": "D1", "kind": "matrix", "label": "matrix", "pocket": [{"id": "D1-P01"}]},
            {
                "id": "D2",
                "kind": "lidded",
                "label": "lidded",
                "pocket": [
                    {
                        "id": "D2-P01",
                        "item": MORPHINE,
                        "par": 10,
                        "min": 3,
                        "max": units,
                        "lots": [{"lot": "A1", "expiry": "2099-01-31", "quantity": units}],
                    }
                ],
            },
        ],
        "patient": [{"mrn": "MRN1", "encounter": "ENC1", "family_name": "Doe", "given_name": "Jo"}],
        "order": [{"id": "ORD1", "mrn": "MRN1", "item": MORPHINE, "dose": "4", "dose_unit": "mg", "verified": True}],
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = quantiles(samples, n=100)
    return cuts[49], cuts[98]


async def _measure(runs: int, transport: str, protocol_version: int = 2) -> dict[str, list[float]]:
    clock = SystemClock()
    hasher = CredentialHasher()  # the default cost, as a cabinet runs it (Settings)
    with tempfile.TemporaryDirectory() as folder:
        db = Database.open(f"sqlite:///{Path(folder) / 'bench.db'}", create=True)
        try:
            schema.upgrade(db)
            with db.write() as session:
                ledger = Ledger(CABINET, clock, is_simulator=True)
                seed_cabinet(session, _layout(runs + 10), load_formulary(), ledger=ledger, hasher=hasher, clock=clock)
            sim = await io_board_sim.start(
                control=ControlSurface(), transport=transport, layout=LAYOUT, protocol_version=protocol_version
            )
            try:
                driver = await IoBoardDriver.connect(sim.url)
                try:
                    return await _runs(db, driver, sim.model, hasher, runs)
                finally:
                    await driver.close()
            finally:
                await sim.close()
        finally:
            db.dispose()


async def _runs(
    db: Database, driver: IoBoardDriver, model: Any, hasher: CredentialHasher, runs: int
) -> dict[str, list[float]]:
    # The engine as ``adc serve`` composes it (the default rules), on the simulator's board.
    engine = compose_cabinet(db=db, cabinet_id=CABINET, clock=SystemClock(), hasher=hasher,
                             devices=Devices(board=driver), is_simulator=True)  # fmt: skip
    restored = await engine.restore()
    if not restored.ok:
        raise RuntimeError(f"benchmark restore refused: {restored}")
    released_at: list[float] = []
    original = model._command

    def watch(latch: Any, value: int) -> None:  # the moment the board model acts on the unlock write
        original(latch, value)
        if value and latch is model.drawers[2] and latch.released:
            released_at.append(time.perf_counter())

    model._command = watch
    login_to_unlock: list[float] = []
    login_only: list[float] = []
    per_pull: list[float] = []

    spent = 0.0  # controller time of the pull being measured

    async def timed(coroutine: Any) -> Any:
        nonlocal spent
        start = time.perf_counter()
        result = await coroutine
        spent += time.perf_counter() - start
        if hasattr(result, "ok") and not result.ok:
            raise RuntimeError(f"benchmark step refused: {result}")
        return result

    def on_hand() -> int:
        with db.read() as session:
            return next(p.quantity for p in list_pockets(session, CABINET) if p.pocket_id == "D2-P01")

    before = on_hand()
    for _ in range(runs):
        counted = on_hand()
        released_at.clear()
        spent = 0.0
        start = time.perf_counter()
        await timed(engine.execute(Login("NURSE1", pin="1111")))
        login_only.append(spent)
        pull_id = (await timed(engine.execute(StartPull("MRN1")))).unwrap().pull_id
        await timed(engine.execute(SelectItem(pull_id, order_id="ORD1")))
        await timed(engine.execute(EnterCount(pull_id, counted)))
        login_to_unlock.append(released_at[0] - start)
        model.open_drawer(2)
        await timed(engine.poll())
        model.lift_lid(2, 1)
        await timed(engine.poll())
        await timed(engine.execute(Take(pull_id, 1)))
        model.close_lid(2, 1)
        await timed(engine.poll())
        model.close_drawer(2)
        await timed(engine.poll())
        await timed(engine.execute(Logout()))
        per_pull.append(spent)
    if on_hand() != before - runs:  # every pull measured really removed its dose
        raise RuntimeError(f"benchmark pulls not all recorded: {before} on hand before, {on_hand()} after {runs}")
    return {"login_to_unlock": login_to_unlock, "login": login_only, "per_pull": per_pull}


def run(console: Console, runs: int = 50, transport: str = "rtu") -> Table:
    console.print(f"[dim]pull benchmark: {runs} pulls, I/O board simulator on Modbus {transport.upper()}...[/dim]")
    try:
        samples = asyncio.run(_measure(runs, transport))
    except OSError:  # no pseudo-terminals here: fall back to TCP
        transport = "tcp"
        samples = asyncio.run(_measure(runs, transport))
    # The same pulls on a version 1 board (no opening counters): what the counters' reads and acknowledgements
    # cost on this bus.
    version_1 = asyncio.run(_measure(runs, transport, protocol_version=1))
    table = Table(title=f"Pull ({runs} runs, Modbus {transport.upper()}, argon2 default cost, version 2 board)")
    table.add_column("measure")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("target")
    for name, key, target in (
        ("credentials submitted -> unlock on the wire", "login_to_unlock", "p99 < 300 ms"),
        ("  of which the Login command (argon2)", "login", ""),
        ("controller time per complete pull", "per_pull", ""),
    ):
        p50, p99 = _percentiles(samples[key])
        table.add_row(name, f"{p50 * 1000:.1f}", f"{p99 * 1000:.1f}", target)
    for name, key in (
        ("credentials -> unlock, version 1 board", "login_to_unlock"),
        ("controller time per pull, version 1 board", "per_pull"),
    ):
        p50, p99 = _percentiles(version_1[key])
        table.add_row(name, f"{p50 * 1000:.1f}", f"{p99 * 1000:.1f}", "")
    table.caption = f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; human actions excluded"
    return table


if __name__ == "__main__":
    out = Console(width=110)
    out.print(run(out))
