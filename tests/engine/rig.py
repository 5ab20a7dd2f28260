"""An engine on a seeded store and an I/O board (fake, or the driver on the simulator over Modbus TCP/RTU),
with the hands of the person at the cabinet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from controller.bootstrap.cabinet import compose_cabinet
from controller.domain.clock import FixedClock
from controller.domain.machine_settings import FsmSettings
from controller.domain.policies import Policy
from controller.domain.rules_document import CabinetRules
from controller.engine.cabinet import CabinetEngine
from controller.engine.context import Devices
from controller.hardware.io_board.driver import IoBoardDriver
from controller.hardware.io_board.fake import FakeIoBoard
from controller.hardware.io_board.interface import IoBoard
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import list_pockets
from controller.store.ledger import Ledger, verify_chain
from controller.store.seed import seed_cabinet
from firmware_protocols.io_board.register_map import CabinetLayout
from simulators import io_board as io_board_sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import FaultPlan
from tests.store.test_inventory import FAST_HASHER

CABINET = "CAB-E"
MORPHINE = "MORPHINE-4MG-ML-CARP"
HEPARIN = "HEPARIN-5000U-ML-1ML"
# D1 (board drawer 1) is a matrix drawer; D2 (board drawer 2) is lidded: its pockets 1 and 2 have lid locks.
BOARD_LAYOUT = CabinetLayout(drawer_count=4, pockets_per_drawer=4, lidded=frozenset({(2, 1), (2, 2)}))


def layout() -> dict[str, Any]:
    return {
        "loaded_by": "PHARM1",
        "care_area": {"id": "ICU", "name": "ICU", "profiled": True},
        "cabinet": {"id": CABINET, "name": "Engine test station"},
        "user": [
            {"id": "NURSE1", "name": "Nurse One", "roles": ["nurse"], "pin": "1111"},
            {"id": "PHARM1", "name": "Pharmacist", "roles": ["pharmacist"], "pin": "3333"},
        ],
        "drawer": [
            {
                "id": "D1",
                "kind": "matrix",
                "label": "matrix",
                "pocket": [
                    {"id": "D1-P01", "item": HEPARIN, "par": 5, "min": 1, "max": 10,
                     "lots": [{"lot": "H1", "expiry": "2027-03-31", "quantity": 5}]},
                ],
            },
            {
                "id": "D2",
                "kind": "lidded",
                "label": "lidded",
                "pocket": [
                    {"id": "D2-P01", "item": MORPHINE, "par": 10, "min": 3, "max": 15,
                     "lots": [
                         {"lot": "OLD", "expiry": "2026-01-31", "quantity": 1},
                         {"lot": "A1", "expiry": "2027-01-31", "quantity": 2},
                         {"lot": "B2", "expiry": "2027-06-30", "quantity": 6},
                     ]},
                ],
            },
        ],
        "patient": [{"mrn": "MRN1", "encounter": "ENC1", "family_name": "Doe", "given_name": "Jo"}],
        "order": [
            {"id": "ORD1", "mrn": "MRN1", "item": MORPHINE, "dose": "12", "dose_unit": "mg", "verified": True},
            {"id": "ORD2", "mrn": "MRN1", "item": HEPARIN, "dose": "5000", "dose_unit": "unit", "verified": True},
        ],
    }  # fmt: skip


def seed(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        seed_cabinet(
            session,
            layout(),
            load_formulary(),
            ledger=Ledger(CABINET, clock, is_simulator=True),
            hasher=FAST_HASHER,
            clock=clock,
        )


def make_engine(
    db: Database, board: IoBoard, clock: FixedClock, *, policy: Policy | None = None, devices: Devices | None = None,
    **settings: Any,
) -> CabinetEngine:  # fmt: skip
    """The cabinet's engine as ``adc serve`` composes it, on this store and board, with ``settings`` for the
    machines (the rules in force are recorded as at any start)."""
    return compose_cabinet(
        db=db,
        cabinet_id=CABINET,
        clock=clock,
        hasher=FAST_HASHER,
        devices=devices or Devices(board=board),
        is_simulator=True,
        rules=CabinetRules(policy or Policy(), FsmSettings(**settings)),
        io_timeout_s=2.0,
    )


class Cabinet:
    """The board and the physical world: ``world`` is the FakeIoBoard or the simulator's IoBoardModel."""

    def __init__(self, kind: str, board: IoBoard, world: Any, sim: Any = None) -> None:
        self.kind = kind
        self.board = board
        self.world = world
        self.sim = sim

    def drawer_released(self, drawer: int) -> bool:
        return bool(self.world.drawers[drawer].released)

    def lid_released(self, drawer: int, pocket: int) -> bool:
        if self.kind == "fake":
            return bool(self.world.lids[drawer, pocket].released)
        return bool(self.world.pockets[drawer, pocket].latch.released)

    def force_open(self, drawer: int) -> None:
        """Someone pries a locked drawer open: the sensors say open, the latch never released."""
        self.world.stick_sensor(drawer, "open", True)
        self.world.stick_sensor(drawer, "closed", False)

    def force_shut(self, drawer: int) -> None:
        if self.kind == "fake":
            self.world.drawers[drawer].stuck.clear()
        else:
            self.world.unstick_sensors(drawer)


@asynccontextmanager
async def open_cabinet(kind: str, faults: FaultPlan | None = None, transport: str = "tcp") -> AsyncIterator[Cabinet]:
    if kind == "fake":
        fake = FakeIoBoard(
            drawer_count=BOARD_LAYOUT.drawer_count,
            pockets_per_drawer=BOARD_LAYOUT.pockets_per_drawer,
            lidded=BOARD_LAYOUT.lidded,
        )
        yield Cabinet(kind, fake, fake)
        return
    sim = await io_board_sim.start(
        control=ControlSurface(), clock=ManualClock(1000.0), faults=faults, transport=transport, layout=BOARD_LAYOUT
    )
    try:
        driver = await IoBoardDriver.connect(sim.url, timeout=0.5)
        try:
            yield Cabinet(kind, driver, sim.model, sim)
        finally:
            await driver.close()
    finally:
        await sim.close()


def stock(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {p.pocket_id: p.quantity for p in list_pockets(session, CABINET)}


def lots(db: Database, pocket: str) -> dict[str, int]:
    with db.read() as session:
        view = next(p for p in list_pockets(session, CABINET) if p.pocket_id == pocket)
        return {lot.lot_number: lot.quantity for lot in view.lots}


def entries(db: Database, after: int = 0) -> list[sa.Row[Any]]:
    with db.reader.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT seq, event_type, actor_id, patient_id, order_id, item_id, pocket_id, lot_number, "
                    "quantity_change, body FROM ledger_entries WHERE cabinet_id = :c AND seq > :s ORDER BY seq"
                ),
                {"c": CABINET, "s": after},
            ).all()
        )


def last_seq(db: Database) -> int:
    rows = entries(db)
    return int(rows[-1].seq) if rows else 0


def chain_ok(db: Database) -> bool:
    with db.reader.connect() as connection:
        return verify_chain(connection).ok


def ledger_stock_agrees(db: Database) -> bool:
    with db.reader.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT pocket_id, SUM(quantity_change) AS total FROM ledger_entries "
                "WHERE quantity_change IS NOT NULL GROUP BY pocket_id"
            )
        ).all()
    by_ledger = {r.pocket_id: int(r.total) for r in rows}
    return all(by_ledger.get(p, 0) == q for p, q in stock(db).items())


RETURN_BIN = "D3-P01"


def clinical_layout() -> dict[str, Any]:
    """The engine test cabinet with a second nurse, a technician and a return bin (drawer 3)."""
    clinical = layout()
    clinical["user"] += [
        {"id": "NURSE2", "name": "Nurse Two", "roles": ["nurse"], "pin": "2222"},
        {"id": "TECH1", "name": "Technician", "roles": ["technician"], "pin": "4444"},
    ]
    clinical["drawer"].append({"id": "D3", "kind": "return_bin", "label": "returns", "pocket": [{"id": RETURN_BIN}]})
    return clinical


def seed_clinical(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        seed_cabinet(session, clinical_layout(), load_formulary(), ledger=Ledger(CABINET, clock, is_simulator=True),
                     hasher=FAST_HASHER, clock=clock)  # fmt: skip
