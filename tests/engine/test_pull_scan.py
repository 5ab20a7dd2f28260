"""The removed package scanned at the cabinet (policy ``scan_removed_package``): over the scanner simulator and
the I/O board simulator, a wrong drug, an expired lot and a quarantined lot are refused and recorded; the right
package is required before the quantity, and the removal is booked to the scanned lot."""

from __future__ import annotations

import json

import pytest

from controller.domain.clock import FixedClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import EnterCount, Login, Logout, RecallLot, ScanRemoved, SelectItem, StartPull, Take
from controller.store.database import Database
from tests.engine.pharmacy_rig import gs1, open_pharmacy, seed
from tests.engine.rig import chain_ok, entries, last_seq, ledger_stock_agrees, lots
from tests.hardware.io_board.rigs import run

MORPHINE_NDC = "0409-1891-01"
HEPARIN_10K_NDC = "72603-456-25"  # heparin 10,000 units/mL: the wrong drug for the morphine pocket


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


async def _morphine_unlocked(engine: CabinetEngine) -> str:
    pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
    assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok
    assert (await engine.execute(EnterCount(pull_id, 9))).ok
    return pull_id


def test_wrong_package_is_refused_and_the_scanned_lot_is_booked(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock, scan_removed_package=True) as ph:
            engine, cab = ph.engine, ph.cab
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _morphine_unlocked(engine)
            cab.world.open_drawer(2)
            await engine.poll()
            cab.world.lift_lid(2, 1)
            await engine.poll()
            start = last_seq(seeded)

            early = await engine.execute(Take(pull_id, 1))
            assert early.code == "workflow.package_not_scanned"

            ph.scanner.present(gs1(HEPARIN_10K_NDC, "HX", "271231", "W1"), "]d2")
            wrong = await engine.execute(ScanRemoved(pull_id, timeout_s=2.0))
            assert wrong.code == "inventory.item_mismatch", wrong
            assert wrong.data["scan"]["verdict"] == "wrong_item"

            ph.scanner.present(gs1(MORPHINE_NDC, "OLD", "260131", "E1"), "]d2")
            expired = await engine.execute(ScanRemoved(pull_id, timeout_s=2.0))
            assert expired.code == "workflow.lot_expired", expired

            ph.scanner.present(gs1(MORPHINE_NDC, "B2", "270630", "G1"), "]d2")
            right = await engine.execute(ScanRemoved(pull_id, timeout_s=2.0))
            assert right.ok, right
            assert right.data["pull"]["package_scanned"] is True
            assert (await engine.execute(Take(pull_id, 1))).ok
            cab.world.close_lid(2, 1)
            await engine.poll()
            cab.world.close_drawer(2)
            await engine.poll()

            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 2, "B2": 5}  # the scanned lot, not FEFO's A1
            new = entries(seeded, start)
            refused = [json.loads(r.body)["reason_code"] for r in new if r.event_type == "input.refused"]
            assert refused == ["wrong_item", "lot_expired"]
            removed = [json.loads(r.body) for r in new if r.event_type == "dose.removed"]
            assert removed[0]["lot_number"] == "B2"
            assert removed[0]["details"]["scanned"] == {"ndc": "0409189101", "lot": "B2", "serial": "G1"}
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


def test_recalled_lot_in_hand_is_refused(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock, scan_removed_package=True) as ph:
            engine, cab = ph.engine, ph.cab
            assert (await engine.execute(Login("PHARM1", pin="3333"))).ok
            assert (await engine.execute(RecallLot(MORPHINE_NDC, "A1"))).ok
            assert (await engine.execute(Logout())).ok
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = await _morphine_unlocked(engine)
            cab.world.open_drawer(2)
            await engine.poll()
            cab.world.lift_lid(2, 1)
            await engine.poll()
            ph.scanner.present(gs1(MORPHINE_NDC, "A1", "270131", "Q1"), "]d2")
            recalled = await engine.execute(ScanRemoved(pull_id, timeout_s=2.0))
            assert recalled.code == "quarantine.lot_quarantined", recalled
            assert (await engine.execute(Take(pull_id, 1))).code == "workflow.package_not_scanned"
            # The nurse puts the recalled package back and takes nothing: zero needs no scan and closes the pull.
            assert (await engine.execute(Take(pull_id, 0))).ok
            cab.world.close_lid(2, 1)
            await engine.poll()
            removed = [json.loads(r.body) for r in entries(seeded) if r.event_type == "dose.removed"]
            assert [(r["details"]["pull_id"], r["quantity_actual"]) for r in removed] == [(pull_id, 0)]
            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 2, "B2": 6}

    run(scenario())
