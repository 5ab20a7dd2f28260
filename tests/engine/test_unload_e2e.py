"""Unload end to end: a technician empties a pocket, each package scanned on the barcode scanner simulator over a
pseudo-terminal (the real ScannerDriver on the pty), the pocket unlocked over Modbus TCP and followed through the
sensors; stock goes to zero in the inventory and in the ledger, lot by lot, expired lots included (unloading
them is the point)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import CountBack, FinishRestock, Login, ScanPackage, StartRestock
from controller.engine.context import Devices
from controller.fsm.compartment import CompartmentState
from controller.fsm.workflows.restock import RestockKind
from controller.hardware.scanner.driver import ScannerDriver
from controller.store.database import Database
from simulators import scanner as scanner_sim
from simulators.common.control import ControlSurface
from simulators.scanner.model import ScannerModel
from tests.engine import pharmacy_rig
from tests.engine.pharmacy_rig import gs1
from tests.engine.rig import (
    Cabinet,
    chain_ok,
    entries,
    last_seq,
    ledger_stock_agrees,
    lots,
    make_engine,
    open_cabinet,
    stock,
)
from tests.hardware.io_board.rigs import run

HEPARIN_NDC = "72603-456-25"
HEPARIN_10K_NDC = "0409-1316-32"
MORPHINE_NDC = "0409-1891-01"


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    pharmacy_rig.seed(db, clock)
    return db


@dataclass
class Bench:
    engine: CabinetEngine
    cab: Cabinet
    scanner: ScannerModel
    url: str


@asynccontextmanager
async def bench(db: Database, clock: FixedClock) -> AsyncIterator[Bench]:
    """The I/O board on Modbus TCP and the scanner on a pseudo-terminal, each behind its real driver."""
    async with open_cabinet("tcp") as cab:
        sim = await scanner_sim.start(control=ControlSurface(), transport="pty", baudrate=115200)
        try:
            scanner = await ScannerDriver.connect(sim.url, baudrate=115200, timeout=2.0)
            try:
                engine = make_engine(db, cab.board, clock, devices=Devices(board=cab.board, scanner=scanner))
                assert (await engine.restore()).ok
                yield Bench(engine, cab, sim.model, sim.url)
            finally:
                await scanner.close()
        finally:
            await sim.close()


def state(engine: CabinetEngine, compartment_id: str) -> CompartmentState:
    """What the engine's machine says of ``compartment_id`` now."""
    return CompartmentState(engine.ctx.compartments[compartment_id].state)


async def ok(engine: CabinetEngine, command: Any) -> Any:
    result = await engine.execute(command)
    assert result.ok, result
    return result


def rows(db: Database, after: int, event_type: str) -> list[dict[str, Any]]:
    return [dict(json.loads(r.body)) for r in entries(db, after) if r.event_type == event_type]


def test_unload_a_pocket_to_zero_scanning_over_a_pty(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with bench(seeded, clock) as b:
            e, cab = b.engine, b.cab
            assert b.url.startswith("/dev/pts/")  # a real pseudo-terminal, not a socket
            start = last_seq(seeded)
            await ok(e, Login("TECH1", pin="4444"))
            started = await ok(e, StartRestock("D1-P01", kind=RestockKind.UNLOAD, quantity=5))
            rid = started.unwrap().restock_id
            assert started.data["restock"]["kind"] == "unload"
            assert cab.drawer_released(1)
            cab.world.open_drawer(1)
            await e.poll()
            assert state(e, "D1") is CompartmentState.OPEN
            await ok(e, CountBack(rid, 5))
            b.scanner.present(gs1(HEPARIN_NDC, "H1", "270331", "U1"), "]d2")
            first = await ok(e, ScanPackage(rid, units=3))
            assert first.data["scan"]["verdict"] == "match" and first.data["scan"]["lot"] == "H1"
            # the 10,000 units/mL vial is not what this pocket holds: refused even on the way out
            b.scanner.present(gs1(HEPARIN_10K_NDC, "HX", "271231", "W1"), "]d2")
            wrong = await e.execute(ScanPackage(rid))
            assert wrong.code == "inventory.item_mismatch", wrong
            # more of lot H1 than the pocket holds: refused at the scan, before anything moves
            b.scanner.present(gs1(HEPARIN_NDC, "H1", "270331", "U2"), "]d2")
            beyond = await e.execute(ScanPackage(rid, units=3))
            assert beyond.code == "inventory.negative_quantity", beyond
            assert (beyond.context["on_hand"], beyond.context["change"]) == (5, -6)
            b.scanner.present(gs1(HEPARIN_NDC, "H1", "270331", "U2"), "]d2")
            await ok(e, ScanPackage(rid, units=2))
            assert stock(seeded)["D1-P01"] == 5  # nothing moves before the unload is finished
            done = await ok(e, FinishRestock(rid))
            assert done.data["state"] == "done"
            cab.world.close_drawer(1)
            await e.poll()
            assert state(e, "D1") is CompartmentState.LOCKED
            assert stock(seeded)["D1-P01"] == 0
            assert sum(lots(seeded, "D1-P01").values()) == 0
            [unloaded] = rows(seeded, start, "stock.unloaded")
            assert (unloaded["actor_id"], unloaded["lot_number"], unloaded["quantity_change"]) == ("TECH1", "H1", -5)
            assert unloaded["details"]["serials"] == ["U1", "U2"]
            assert [r["reason_code"] for r in rows(seeded, start, "input.refused")] == ["wrong_item", "beyond_lot"]
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_unload_a_controlled_pocket_with_an_expired_lot(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with bench(seeded, clock) as b:
            e, cab = b.engine, b.cab
            start = last_seq(seeded)
            await ok(e, Login("TECH1", pin="4444"))
            # no vault source is asked for: the stock goes back, it does not come in
            rid = (await ok(e, StartRestock("D2-P01", kind=RestockKind.UNLOAD, quantity=9))).unwrap().restock_id
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)
            await e.poll()
            await ok(e, CountBack(rid, 9))
            packages = [("OLD", "260131", "M1", 1), ("A1", "270131", "M2", 2), ("B2", "270630", "M3", 6)]
            for lot, expiry, serial, units in packages:
                b.scanner.present(gs1(MORPHINE_NDC, lot, expiry, serial), "]d2")
                scanned = await ok(e, ScanPackage(rid, units=units))
                assert scanned.data["scan"]["lot"] == lot
            await ok(e, FinishRestock(rid))
            cab.world.close_lid(2, 1)
            await e.poll()
            cab.world.close_drawer(2)
            await e.poll()
            assert state(e, "D2") is CompartmentState.LOCKED
            assert state(e, "D2-P01") is CompartmentState.LOCKED
            assert stock(seeded)["D2-P01"] == 0
            unloaded = rows(seeded, start, "stock.unloaded")
            assert sorted((r["lot_number"], r["quantity_change"]) for r in unloaded) == [
                ("A1", -2), ("B2", -6), ("OLD", -1),
            ]  # fmt: skip
            assert all(r["actor_id"] == "TECH1" for r in unloaded)
            assert all(r["details"]["custody"]["by"] == "TECH1" for r in unloaded)  # a controlled item
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())
