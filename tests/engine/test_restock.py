"""Restock end to end: pick list from par levels, the pocket unlocked over Modbus TCP and followed through the
sensors, a blind count-back, each package scanned over the wire (scanner simulator on TCP, ScannerDriver) and
checked against the pocket; wrong drug, expired and recalled lots refused; short-dated warned; one stock entry per
lot; a controlled restock waiting for its witness, who signs at the cabinet with a PIN checked like a login. Also
the shared pharmacy rig the other pharmacy tests use."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.domain.policies import Policy, WitnessedAction
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import Login
from controller.engine.commands_pharmacy import (
    CountBack,
    FinishRestock,
    RecallLot,
    ScanPackage,
    ShowPickList,
    SignRestockWitness,
    StartRestock,
)
from controller.fsm.compartment import CompartmentState
from controller.fsm.settings import FsmSettings
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
from tests.engine.rig import CABINET, Cabinet, chain_ok, entries, last_seq, ledger_stock_agrees, lots, stock
from tests.hardware.io_board.rigs import run
from tests.store.test_inventory import FAST_HASHER

HEPARIN_10K = "HEPARIN-10000U-ML-CARP"
INSULIN = "INSULIN-REGULAR-U100-10ML"
OXYCODONE = "OXYCODONE-5MG-TAB"
NALOXONE = "NALOXONE-0.4MG-ML-CARP"  # on the demo formulary's critical-override list
WITNESSED_RESTOCK = Policy(witnessed_actions=Policy().witnessed_actions | {WitnessedAction.CONTROLLED_RESTOCK})


def layout() -> dict[str, Any]:
    """The engine rig's cabinet plus a technician, an administrator, naloxone beside the heparin in the matrix
    drawer, and a refrigerator drawer (board drawer 3)."""
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
        seed_cabinet(
            session,
            layout(),
            load_formulary(),
            ledger=Ledger(CABINET, clock, is_simulator=True),
            hasher=FAST_HASHER,
            clock=clock,
        )


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
    """Every device on its simulator over TCP, each behind its real driver."""
    control = ControlSurface()
    async with rig.open_cabinet("tcp") as cab:
        scan = await scanner_sim.start(control=control, transport="tcp")
        count = await counter_sim.start(control=control, transport="tcp", faults=counter_faults)
        label = await printer_sim.start(control=control)
        scanner = await ScannerDriver.connect(scan.url, timeout=2.0)
        counter = await PillCounterDriver.connect(count.url)
        printer = await LabelPrinterDriver.connect(label.url)
        try:
            engine = CabinetEngine(
                db=db,
                ledger=Ledger(CABINET, clock, is_simulator=True),
                board=cab.board,
                clock=clock,
                policy=policy or Policy(),
                settings=FsmSettings(**settings),
                hasher=FAST_HASHER,
                scanner=scanner,
                pill_counter=counter,
                label_printer=printer,
                camera=camera,
            )
            assert (await engine.restore()).ok
            yield Pharmacy(engine, cab, scan.model, count.model, label.model)
        finally:
            for driver in (scanner, counter, printer):
                await driver.close()
            for sim in (scan, count, label):
                await sim.close()


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


def kinds(db: Database, after: int) -> list[tuple[str, str | None, str | None]]:
    rows = entries(db, after)
    return [
        (r.event_type, json.loads(r.body)["details"].get("kind"), json.loads(r.body).get("reason_code")) for r in rows
    ]


def test_pick_list_refills_to_par_never_above_max(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            # morphine: 8 usable (the expired unit takes room but does not count), min 3: not due yet
            assert (await e.execute(ShowPickList())).data["lines"] == []
            assert (await e.execute(RecallLot("0409-1891-01", "B2"))).code == "policy.privilege_missing"

    run(scenario())


def test_restock_by_scan_end_to_end(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            start = last_seq(seeded)
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            started = await e.execute(StartRestock("D1-P01", quantity=3))
            assert started.ok, started
            assert "expected_on_hand" not in json.dumps(started.data)  # the count-back is blind
            assert cab.drawer_released(1)  # unlocked over Modbus TCP
            cab.world.open_drawer(1)
            await e.poll()
            assert e.compartments["D1"].state is CompartmentState.OPEN
            assert (await e.execute(CountBack(5))).ok
            # the primary NDC as a GS1 DataMatrix, an alternate as UPC-A would carry no lot: use GS1 for both
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "S0001"), "]d2")
            first = await e.execute(ScanPackage())
            assert first.ok, first
            assert first.data["scan"]["verdict"] == "match" and first.data["scan"]["lot"] == "HP7"
            ph.scanner.present(gs1("72603-456-01", "HP7", "270800", "S0002"), "]d2")  # alternate NDC, day 00
            second = await e.execute(ScanPackage())
            assert second.ok, second
            assert second.data["scan"]["expiry"] == "2027-08-31"  # day 00 = end of the month
            # short-dated: warned, accepted
            ph.scanner.present(gs1("72603-456-25", "HP8", "261210", "S0003"), "]d2")
            short = await e.execute(ScanPackage())
            assert short.ok and short.data["scan"]["short_dated"]
            done = await e.execute(FinishRestock())
            assert done.ok, done
            cab.world.close_drawer(1)
            await e.poll()
            await e.poll()
            assert e.compartments["D1"].state is CompartmentState.LOCKED
            assert lots(seeded, "D1-P01") == {"H1": 5, "HP8": 1, "HP7": 2}
            got = kinds(seeded, start)
            assert ("stock.short_dated", "stock.short_dated", "short_dated") in got
            restocked = [r for r in entries(seeded, start) if r.event_type == "stock.restocked"]
            assert sorted((r.lot_number, r.quantity_change) for r in restocked) == [("HP7", 2), ("HP8", 1)]
            body = json.loads(next(r.body for r in restocked if r.lot_number == "HP7"))
            assert body["details"]["serials"] == ["S0001", "S0002"]
            assert body["actor_id"] == "TECH1"
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


@pytest.mark.parametrize(
    ("barcode", "symbology", "code", "reason"),
    [
        # heparin 10,000 units/mL scanned into the 5,000 units/mL pocket (the 2006 mix-up): wrong drug
        (gs1("0409-1316-32", "HX1", "271231", "W1"), "]d2", "inventory.item_mismatch", "wrong_item"),
        (upca("0409-1316-32"), "]E0", "inventory.item_mismatch", "wrong_item"),
        # the right drug, expired lot
        (gs1("72603-456-25", "OLD9", "251031", "E1"), "]d2", "workflow.lot_expired", "lot_expired"),
        # a grocery EAN-13: not an NDC
        ("4006381333931", "]E0", "inventory.item_mismatch", "not_an_ndc"),
    ],
)
def test_restock_refusals_are_recorded(
    *, seeded: Database, clock: FixedClock, barcode: str, symbology: str, code: str, reason: str
) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            assert (await e.execute(StartRestock("D1-P01", quantity=2))).ok
            assert (await e.execute(CountBack(5))).ok
            start = last_seq(seeded)
            ph.scanner.present(barcode, symbology)
            refused = await e.execute(ScanPackage())
            assert refused.code == code, refused
            assert [(k[0], k[2]) for k in kinds(seeded, start)] == [("input.refused", reason)]
            assert stock(seeded)["D1-P01"] == 5

    run(scenario())


def test_recalled_lot_is_refused_at_restock(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            recalled = await e.execute(RecallLot("7260345625", "HP7"))
            assert recalled.ok, recalled
            assert recalled.data["unload"] == []
            assert (await e.execute(StartRestock("D1-P01", quantity=2))).ok
            assert (await e.execute(CountBack(5))).ok
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "R1"), "]d2")
            refused = await e.execute(ScanPackage())
            assert refused.code == "quarantine.lot_quarantined"
            assert stock(seeded)["D1-P01"] == 5

    run(scenario())


def test_controlled_restock_records_custody(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            assert (await e.execute(StartRestock("D2-P01", quantity=2))).code == "workflow.custody_required"
            started = await e.execute(StartRestock("D2-P01", quantity=2, source="vault:CII-1"))
            assert started.ok, started
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            assert (await e.execute(CountBack(9))).ok
            start = last_seq(seeded)
            ph.scanner.present(gs1("0409-1891-01", "M9", "271130", "C1"), "]d2")
            assert (await e.execute(ScanPackage())).ok
            assert (await e.execute(FinishRestock())).ok
            row = next(r for r in entries(seeded, start) if r.event_type == "stock.restocked")
            assert json.loads(row.body)["details"]["custody"] == {
                "source": "vault:CII-1",
                "by": "TECH1",
                "witness": None,
            }
            assert lots(seeded, "D2-P01")["M9"] == 1
            assert ledger_stock_agrees(seeded)

    run(scenario())


def test_controlled_restock_waits_for_a_witness_who_signs_at_the_cabinet(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock, policy=WITNESSED_RESTOCK) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            assert (await e.execute(StartRestock("D2-P01", quantity=1, source="vault:CII-1"))).ok
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)
            await e.poll()
            assert (await e.execute(CountBack(9))).ok
            ph.scanner.present(gs1("0409-1891-01", "M9", "271130", "C7"), "]d2")
            assert (await e.execute(ScanPackage())).ok
            start = last_seq(seeded)
            finished = await e.execute(FinishRestock())
            assert finished.ok and finished.data["state"] == "awaiting_witness", finished
            assert finished.data["restock"]["witness_required"] is True
            assert "M9" not in lots(seeded, "D2-P01")  # nothing is stocked before the witness signs
            # the technician cannot witness their own restock; a wrong PIN is a failed sign-in of the witness;
            # an administrator does not hold the witness privilege
            own = await e.execute(SignRestockWitness("TECH1", pin="4444"))
            assert own.code == "policy.witness_is_actor", own
            wrong = await e.execute(SignRestockWitness("NURSE1", pin="0000"))
            assert wrong.code == "auth.bad_credentials" and wrong.data["failures"] == 1, wrong
            admin = await e.execute(SignRestockWitness("ADMIN1", pin="5555"))
            assert admin.code == "policy.witness_lacks_privilege", admin
            assert "M9" not in lots(seeded, "D2-P01")
            signed = await e.execute(SignRestockWitness("NURSE1", pin="1111"))
            assert signed.ok and signed.data["state"] == "done" and signed.data["witness_id"] == "NURSE1", signed
            assert lots(seeded, "D2-P01")["M9"] == 1
            rows = entries(seeded, start)
            failed = [json.loads(r.body)["details"]["kind"] for r in rows if r.event_type == "session.login_failed"]
            assert failed == ["session.witness_failed"]  # the wrong PIN, on the witness's own record
            restocked = [r for r in rows if r.event_type == "stock.restocked"]
            assert len(restocked) == 1
            body = json.loads(restocked[0].body)
            assert (body["actor_id"], body["witness_id"], body["lot_number"]) == ("TECH1", "NURSE1", "M9")
            assert body["details"]["custody"] == {"source": "vault:CII-1", "by": "TECH1", "witness": "NURSE1"}
            again = await e.execute(SignRestockWitness("NURSE1", pin="1111"))
            assert again.code == "engine.no_workflow"
            assert e.session.lockout_of("NURSE1").failures == 0  # a good sign-in clears the witness's failures
            cab.world.close_lid(2, 1)
            await e.poll()
            cab.world.close_drawer(2)
            await e.poll()
            await e.poll()
            assert e.compartments["D2"].state is CompartmentState.LOCKED
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())
