"""The pharmacy cabinet the pull-scan, camera, fault and service tests share, on the new engine: the engine rig's
cabinet plus a technician, an administrator, naloxone beside the heparin in matrix drawer D1 and a refrigerator
drawer (board drawer 3); package barcodes; and every device on its simulator over TCP behind its real driver.

The same cabinet and helpers as ``tests.engine.test_restock`` (which still used the old engine when these tests
were ported): kept here so the tests that only need the rig do not depend on that file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from controller.domain.clock import FixedClock
from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.domain.policies import Policy
from controller.engine.cabinet import CabinetEngine
from controller.engine.context import Devices
from controller.hardware.label_printer.driver import LabelPrinterDriver
from controller.hardware.pill_counter.driver import PillCounterDriver
from controller.hardware.scanner.driver import ScannerDriver
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import seed_cabinet
from simulators import label_printer as printer_sim
from simulators import pill_counter as counter_sim
from simulators import scanner as scanner_sim
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from tests.engine import rig
from tests.engine.rig import CABINET, Cabinet
from tests.store.test_inventory import FAST_HASHER

HEPARIN_10K = "HEPARIN-10000U-ML-CARP"
INSULIN = "INSULIN-REGULAR-U100-10ML"
OXYCODONE = "OXYCODONE-5MG-TAB"
NALOXONE = "NALOXONE-0.4MG-ML-CARP"  # on the demo formulary's critical-override list


def layout() -> dict[str, Any]:
    data = rig.layout()
    data["user"] += [
        {"id": "TECH1", "name": "Technician", "roles": ["technician"], "pin": "4444"},
        {"id": "ADMIN1", "name": "Administrator", "roles": ["admin"], "pin": "5555"},
    ]
    data["drawer"][0]["pocket"].append(
        {"id": "D1-P02", "item": NALOXONE, "par": 4, "min": 1, "max": 6,
         "lots": [{"lot": "NX1", "expiry": "2027-09-30", "quantity": 4}]},
    )  # fmt: skip
    data["drawer"].append(
        {"id": "D3", "kind": "refrigerator", "label": "fridge", "pocket": [
            {"id": "D3-P01", "item": INSULIN, "par": 4, "min": 1, "max": 6,
             "lots": [{"lot": "INS1", "expiry": "2027-05-31", "quantity": 3}]},
        ]},
    )  # fmt: skip
    return data


def seed(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        seed_cabinet(session, layout(), load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=FAST_HASHER, clock=clock)  # fmt: skip


def gs1(ndc: str, lot: str, expiry: str, serial: str, indicator: int = 0) -> str:
    """A GS1 DataMatrix element string as a package carries it: 01 GTIN, 17 expiry (YYMMDD), 10 lot <GS> 21 serial."""
    return f"01{gtin14_from_ndc(Ndc.parse(ndc), indicator)}17{expiry}10{lot}\x1d21{serial}"


def upca(ndc: str) -> str:
    return upca_from_ndc(Ndc.parse(ndc))


@dataclass
class Pharmacy:
    engine: CabinetEngine
    cab: Cabinet
    scanner: Any  # the scanner simulator's model: ``present(text, symbology)``
    counter: Any  # the pill counter simulator's model
    printer: Any  # the label printer simulator's model


@asynccontextmanager
async def open_pharmacy(
    db: Database,
    clock: FixedClock,
    *,
    counter_faults: FaultPlan | None = None,
    policy: Policy | None = None,
    camera: Any = None,
    **settings: Any,
) -> AsyncIterator[Pharmacy]:
    """Every device on its simulator over TCP, each behind its real driver; the engine restored."""
    control = ControlSurface()
    async with rig.open_cabinet("tcp") as cab:
        scan = await scanner_sim.start(control=control, transport="tcp")
        count = await counter_sim.start(control=control, transport="tcp", faults=counter_faults)
        label = await printer_sim.start(control=control)
        scanner = await ScannerDriver.connect(scan.url, timeout=2.0)
        counter = await PillCounterDriver.connect(count.url)
        printer = await LabelPrinterDriver.connect(label.url)
        try:
            devices = Devices(board=cab.board, scanner=scanner, counter=counter, robot=counter, printer=printer,
                              camera=camera)  # fmt: skip
            engine = rig.make_engine(db, cab.board, clock, policy=policy, devices=devices, **settings)
            assert (await engine.restore()).ok
            yield Pharmacy(engine, cab, scan.model, count.model, label.model)
        finally:
            for driver in (scanner, counter, printer):
                await driver.close()
            for sim in (scan, count, label):
                await sim.close()
