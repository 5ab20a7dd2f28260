"""Restock end to end: pick list from par levels, the pocket unlocked over Modbus TCP and followed through the
sensors, a blind count-back, each package scanned over the wire (scanner simulator on TCP, ScannerDriver) and
checked against the pocket; wrong drug, expired and recalled lots refused; short-dated warned; one stock entry per
lot; a controlled restock waiting for its witness, who signs at the cabinet with a PIN checked like a login; and a
restock whose technician leaves with the pocket opened and the restock unfinished (an undocumented access, nothing
stocked). The shared pharmacy rig is ``tests.engine.pharmacy_rig``."""

from __future__ import annotations

import json

import pytest

from controller.domain.clock import FixedClock
from controller.domain.policies import Policy, WitnessedAction
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    CancelRestock,
    CountBack,
    FinishRestock,
    ListDiscrepancies,
    Login,
    Logout,
    RecallLot,
    ScanPackage,
    SelectItem,
    ShowPickList,
    SignRestockWitness,
    StartPull,
    StartRestock,
)
from controller.fsm.compartment import CompartmentState
from controller.store import engine_state
from controller.store.database import Database
from tests.engine import rig
from tests.engine.pharmacy_rig import gs1, open_pharmacy, seed, upca
from tests.engine.rig import CABINET, chain_ok, entries, last_seq, ledger_stock_agrees, lots, stock
from tests.hardware.io_board.rigs import run

WITNESSED_RESTOCK = Policy(witnessed_actions=Policy().witnessed_actions | {WitnessedAction.CONTROLLED_RESTOCK})


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


def kinds(db: Database, after: int) -> list[tuple[str, str | None, str | None]]:
    rows = entries(db, after)
    return [
        (r.event_type, json.loads(r.body)["details"].get("kind"), json.loads(r.body).get("reason_code")) for r in rows
    ]


def state(engine: CabinetEngine, compartment_id: str) -> CompartmentState:
    """What the engine's machine says of ``compartment_id`` now."""
    return CompartmentState(engine.ctx.compartments[compartment_id].state)


async def start_restock(engine: CabinetEngine, pocket: str, **fields: object) -> str:
    """Start a restock of ``pocket`` (the user logged in): its id."""
    started = await engine.execute(StartRestock(pocket, **fields))  # type: ignore[arg-type]
    assert started.ok, started
    return started.unwrap().restock_id


def test_pick_list_refills_to_par_never_above_max(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            # morphine: 8 usable (the expired unit takes room but does not count), min 3: not due yet
            assert e.query(ShowPickList()).data["lines"] == ()
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
            rid = started.unwrap().restock_id
            assert "expected_on_hand" not in json.dumps(started.data)  # the count-back is blind
            assert cab.drawer_released(1)  # unlocked over Modbus TCP
            cab.world.open_drawer(1)
            await e.poll()
            assert state(e, "D1") is CompartmentState.OPEN
            assert (await e.execute(CountBack(rid, 5))).ok
            # the primary NDC as a GS1 DataMatrix, an alternate as UPC-A would carry no lot: use GS1 for both
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "S0001"), "]d2")
            first = await e.execute(ScanPackage(rid))
            assert first.ok, first
            assert first.data["scan"]["verdict"] == "match" and first.data["scan"]["lot"] == "HP7"
            ph.scanner.present(gs1("72603-456-01", "HP7", "270800", "S0002"), "]d2")  # alternate NDC, day 00
            second = await e.execute(ScanPackage(rid))
            assert second.ok, second
            assert second.data["scan"]["expiry"] == "2027-08-31"  # day 00 = end of the month
            # short-dated: warned, accepted
            ph.scanner.present(gs1("72603-456-25", "HP8", "261210", "S0003"), "]d2")
            short = await e.execute(ScanPackage(rid))
            assert short.ok and short.data["scan"]["short_dated"]
            done = await e.execute(FinishRestock(rid))
            assert done.ok, done
            cab.world.close_drawer(1)
            await e.poll()
            await e.poll()
            assert state(e, "D1") is CompartmentState.LOCKED
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
            rid = await start_restock(e, "D1-P01", quantity=2)
            assert (await e.execute(CountBack(rid, 5))).ok
            start = last_seq(seeded)
            ph.scanner.present(barcode, symbology)
            refused = await e.execute(ScanPackage(rid))
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
            assert recalled.data["unload"] == ()
            rid = await start_restock(e, "D1-P01", quantity=2)
            assert (await e.execute(CountBack(rid, 5))).ok
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "R1"), "]d2")
            refused = await e.execute(ScanPackage(rid))
            assert refused.code == "quarantine.lot_quarantined"
            assert stock(seeded)["D1-P01"] == 5

    run(scenario())


def test_controlled_restock_records_custody(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            assert (await e.execute(StartRestock("D2-P01", quantity=2))).code == "workflow.custody_required"
            rid = await start_restock(e, "D2-P01", quantity=2, source="vault:CII-1")
            assert cab.drawer_released(2) and cab.lid_released(2, 1)
            assert (await e.execute(CountBack(rid, 9))).ok
            start = last_seq(seeded)
            ph.scanner.present(gs1("0409-1891-01", "M9", "271130", "C1"), "]d2")
            assert (await e.execute(ScanPackage(rid))).ok
            assert (await e.execute(FinishRestock(rid))).ok
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
            rid = await start_restock(e, "D2-P01", quantity=1, source="vault:CII-1")
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)
            await e.poll()
            assert (await e.execute(CountBack(rid, 9))).ok
            ph.scanner.present(gs1("0409-1891-01", "M9", "271130", "C7"), "]d2")
            assert (await e.execute(ScanPackage(rid))).ok
            start = last_seq(seeded)
            finished = await e.execute(FinishRestock(rid))
            assert finished.ok and finished.data["state"] == "awaiting_witness", finished
            assert finished.data["restock"]["witness_required"] is True
            assert "M9" not in lots(seeded, "D2-P01")  # nothing is stocked before the witness signs
            # the technician cannot witness their own restock; a wrong PIN is a failed sign-in of the witness;
            # an administrator does not hold the witness privilege
            own = await e.execute(SignRestockWitness(rid, "TECH1", pin="4444"))
            assert own.code == "policy.witness_is_actor", own
            wrong = await e.execute(SignRestockWitness(rid, "NURSE1", pin="0000"))
            assert wrong.code == "auth.bad_credentials" and wrong.data["failures"] == 1, wrong
            admin = await e.execute(SignRestockWitness(rid, "ADMIN1", pin="5555"))
            assert admin.code == "policy.witness_lacks_privilege", admin
            assert "M9" not in lots(seeded, "D2-P01")
            signed = await e.execute(SignRestockWitness(rid, "NURSE1", pin="1111"))
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
            again = await e.execute(SignRestockWitness(rid, "NURSE1", pin="1111"))
            assert again.code == "engine.no_workflow"
            assert e.ctx.session.lockout_of("NURSE1").failures == 0  # a good sign-in clears the witness's failures
            cab.world.close_lid(2, 1)
            await e.poll()
            cab.world.close_drawer(2)
            await e.poll()
            await e.poll()
            assert state(e, "D2") is CompartmentState.LOCKED
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())


# --- the end of a restock that was not finished -------------------------------------------------------------------


def test_a_cancelled_restock_is_recorded_and_relocks_its_pocket(seeded: Database, clock: FixedClock) -> None:
    """Cancelling is on the record (``workflow.cancelled``, kind restock) and what was released is locked again."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            rid = await start_restock(e, "D1-P01", quantity=2)
            assert cab.drawer_released(1)
            start = last_seq(seeded)
            cancelled = await e.execute(CancelRestock(rid))
            assert cancelled.ok and cancelled.data["state"] == "cancelled", cancelled
            assert not cab.drawer_released(1)
            got = [json.loads(r.body) for r in entries(seeded, start)]
            assert [(b["event_type"], b["details"].get("restock_id")) for b in got] == [("workflow.cancelled", rid)]
            assert stock(seeded)["D1-P01"] == 5 and chain_ok(seeded)

    run(scenario())


def test_logout_with_the_pocket_opened_and_the_restock_unfinished_is_an_undocumented_access(
    seeded: Database, clock: FixedClock
) -> None:
    """The technician opened the drawer, scanned a package and logged out without finishing: nothing is stocked,
    the pocket is relocked, and an undocumented access names the pocket, the technician and the restock."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            rid = await start_restock(e, "D1-P01", quantity=2)
            cab.world.open_drawer(1)
            await e.poll()
            assert (await e.execute(CountBack(rid, 5))).ok
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "S0001"), "]d2")
            assert (await e.execute(ScanPackage(rid))).ok
            cab.world.close_drawer(1)
            await e.poll()
            start = last_seq(seeded)
            assert (await e.execute(Logout())).ok
            assert not cab.drawer_released(1)
            got = [json.loads(r.body) for r in entries(seeded, start)]
            (raised,) = [b for b in got if b["event_type"] == "discrepancy.raised"]
            assert (raised["reason_code"], raised["pocket_id"], raised["actor_id"]) == (
                "undocumented_access", "D1-P01", "TECH1",
            )  # fmt: skip
            assert (raised["details"]["restock_id"], raised["details"]["ended_by"]) == (rid, "logoff")
            assert raised["details"]["scanned_not_stocked"] == 1
            assert not [b for b in got if b["event_type"].startswith("stock.")]  # nothing scanned is stocked
            discrepancies = e.query(ListDiscrepancies()).unwrap().discrepancies
            (row,) = [d for d in discrepancies if d["state"] in ("open", "escalated")]
            assert (row["kind"], row["pocket_id"], row["workflow_id"], row["count_required"]) == (
                "undocumented_access", "D1-P01", rid, True,
            )  # fmt: skip
            with seeded.read() as session:
                (stored,) = engine_state.open_discrepancies(session, CABINET, pocket_id="D1-P01")
            assert stored.counted is None  # nobody has counted the pocket yet
            assert lots(seeded, "D1-P01") == {"H1": 5}
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)
            # the pocket is blocked for pulls until it is counted and the discrepancy resolved
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = (await e.execute(StartPull("MRN1"))).unwrap().pull_id
            blocked = await e.execute(SelectItem(pull_id, order_id="ORD2"))  # heparin, D1-P01
            assert blocked.code == "workflow.undocumented_access", blocked
            assert not cab.drawer_released(1)
            # details.kind names the exact kind of every entry (controller.fsm.base), as for a pull or a count
            assert raised["details"]["kind"] == "discrepancy.undocumented_access", (
                "engine bug: Restock.on_undocumented (controller/fsm/workflows/restock.py) overwrites details.kind "
                f"with the restock kind {raised['details']['kind']!r}; it must stay 'discrepancy.undocumented_access'"
            )

    run(scenario())


def test_logout_before_the_pocket_was_opened_cancels_the_restock(seeded: Database, clock: FixedClock) -> None:
    """Unlocked but never opened: the restock ends without a discrepancy and its pocket is locked again."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            await start_restock(e, "D1-P01", quantity=2)
            assert cab.drawer_released(1)
            start = last_seq(seeded)
            assert (await e.execute(Logout())).ok
            assert not cab.drawer_released(1)
            assert "discrepancy.raised" not in [k[0] for k in kinds(seeded, start)]
            assert not [d for d in e.query(ListDiscrepancies()).unwrap().discrepancies if d["state"] == "open"]

    run(scenario())


def test_a_restart_after_the_pocket_was_opened_is_an_undocumented_access(seeded: Database, clock: FixedClock) -> None:
    """The controller dies while a restock's drawer is open: the engine that starts next finds it in the journal,
    stocks nothing it scanned, and raises an undocumented access for the pocket."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("TECH1", pin="4444"))).ok
            rid = await start_restock(e, "D1-P01", quantity=2)
            cab.world.open_drawer(1)
            await e.poll()
            assert (await e.execute(CountBack(rid, 5))).ok
            ph.scanner.present(gs1("72603-456-25", "HP7", "270831", "S0001"), "]d2")
            assert (await e.execute(ScanPackage(rid))).ok
            cab.world.close_drawer(1)
            start = last_seq(seeded)
            restarted = rig.make_engine(seeded, cab.board, clock, devices=e.ctx.devices)
            assert (await restarted.restore()).ok
            got = [json.loads(r.body) for r in entries(seeded, start)]
            (raised,) = [b for b in got if b["event_type"] == "discrepancy.raised"]
            assert (raised["details"]["kind"], raised["pocket_id"], raised["actor_id"]) == (
                "discrepancy.undocumented_access", "D1-P01", "TECH1",
            )  # fmt: skip
            assert (raised["details"]["restock_id"], raised["details"]["ended_by"]) == (rid, "controller_restarted")
            assert not [b for b in got if b["event_type"].startswith("stock.")]
            (row,) = [d for d in restarted.query(ListDiscrepancies()).unwrap().discrepancies if d["state"] == "open"]
            assert (row["kind"], row["workflow_id"]) == ("undocumented_access", rid)
            assert lots(seeded, "D1-P01") == {"H1": 5} and chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario())
