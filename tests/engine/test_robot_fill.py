"""Counting-robot fill end to end: stock bottle scanned over TCP, the pill counter simulator counting over TCP, a
schedule II second count that catches a MISCOUNT the wire cannot see, the ZPL label on the printer simulator, and
the fill as a ``fill.completed`` entry of its own."""

from __future__ import annotations

import json

import pytest

from controller.domain.clock import FixedClock
from controller.engine.commands import GetCabinetStatus, Login, SecondCount, StartFill
from controller.store.database import Database
from firmware_protocols.label_printer.codec import label_fields
from simulators.common.faults import Fault, FaultKind, FaultPlan
from tests.engine import rig
from tests.engine.pharmacy_rig import OXYCODONE, gs1, open_pharmacy, seed
from tests.engine.rig import chain_ok, entries, last_seq
from tests.hardware.io_board.rigs import run

FAMOTIDINE = "FAMOTIDINE-40MG-TAB"


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


def _fill_entries(db: Database, after: int) -> list[tuple[str, str, str | None]]:
    return [
        (r.event_type, json.loads(r.body)["details"]["kind"], json.loads(r.body).get("reason_code"))
        for r in entries(db, after)
    ]


def test_fill_happy_path_prints_and_records(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            ph.counter.pour(10)
            ph.scanner.present(gs1("51655-102-30", "F77", "280131", "B1"), "]d2")
            filled = await e.execute(StartFill(FAMOTIDINE, 10, "RX100", "DOE, JO"))
            assert filled.ok, filled
            assert ph.counter.vial == 10
            assert ph.printer.printed_count() == 1
            fields = label_fields(ph.printer.labels[-1])
            assert any("Qty 10" in f for f in fields) and any("RX100" in f for f in fields)
            assert _fill_entries(seeded, start) == [("fill.completed", "fill.completed", "robot_fill")]
            fill = json.loads(entries(seeded, start)[-1].body)
            assert (fill["actor_id"], fill["lot_number"], fill["quantity_actual"]) == ("PHARM1", "F77", 10)
            assert fill["quantity_change"] is None  # the vial comes from pharmacy stock, not from a pocket
            assert fill["details"]["rx_number"] == "RX100" and fill["details"]["serial"] == "B1"
            assert chain_ok(seeded)

    run(scenario())


def test_hazardous_tablets_refused_before_the_counter_moves(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            before = ph.counter.requests
            refused = await e.execute(StartFill("METHOTREXATE-2.5MG-TAB", 8, "RX101", "DOE, JO"))
            assert refused.code == "policy.hazardous_automatic_counter"
            assert ph.counter.requests == before  # nothing went to the counter
            assert _fill_entries(seeded, start) == [
                ("input.refused", "fill.refused", "policy.hazardous_automatic_counter")
            ]

    run(scenario())


def test_schedule_ii_double_count_catches_a_miscount(seeded: Database, clock: FixedClock) -> None:
    faults = FaultPlan([Fault(FaultKind.MISCOUNT, params={"by": 1})])

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock, counter_faults=faults) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            ph.counter.pour(11)
            ph.scanner.present(gs1("0904-6966-61", "OX1", "280131", "B2"), "]d2")
            first = await e.execute(StartFill(OXYCODONE, 10, "RX102", "DOE, JO"))
            assert first.ok and first.data["state"] == "awaiting_second_count", first
            fill_id = first.unwrap().fill_id
            assert ph.counter.vial == 11  # the counter reported 10
            ph.counter.pour(ph.counter.remove_vial())  # pour the vial back for the second count
            second = await e.execute(SecondCount(fill_id))
            assert second.code == "fill.count_mismatch", second
            assert second.context == {"first": 10, "second": 11}
            assert ph.printer.printed_count() == 0
            got = _fill_entries(seeded, start)
            assert got == [
                ("count.entered", "fill.first_count", "robot_fill_first_count"),
                ("discrepancy.raised", "fill.count_mismatch", "fill_double_count_mismatch"),
            ]

    run(scenario())


def test_schedule_ii_double_count_agrees(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            ph.counter.pour(10)
            ph.scanner.present(gs1("0904-6966-61", "OX1", "280131", "B3"), "]d2")
            fill_id = (await e.execute(StartFill(OXYCODONE, 10, "RX103", "DOE, JO"))).unwrap().fill_id
            ph.counter.pour(ph.counter.remove_vial())
            second = await e.execute(SecondCount(fill_id))
            assert second.ok and second.data["state"] == "filled", second
            assert ph.counter.vial == 10 and ph.printer.printed_count() == 1
            filled = json.loads(entries(seeded, last_seq(seeded) - 1)[-1].body)
            assert (filled["event_type"], filled["details"]["second_count"]) == ("fill.completed", 10)

    run(scenario())


def test_printer_out_of_paper_refuses_the_fill(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            ph.printer.run_out_of_paper()
            ph.counter.pour(10)
            ph.scanner.present(gs1("51655-102-30", "F77", "280131", "B4"), "]d2")
            refused = await e.execute(StartFill(FAMOTIDINE, 10, "RX104", "DOE, JO"))
            assert refused.code == "device.printer_fault", refused
            got = _fill_entries(seeded, start)
            assert got == [("input.refused", "fill.refused", "device.printer_fault")]  # nothing recorded as filled

    run(scenario())


def test_wrong_bottle_refused(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            ph.counter.pour(10)
            ph.scanner.present(gs1("52959-728-30", "L1", "280131", "B5"), "]d2")  # lisinopril
            refused = await e.execute(StartFill(FAMOTIDINE, 10, "RX105", "DOE, JO"))
            assert refused.code == "inventory.item_mismatch"
            assert ph.counter.vial == 0

    run(scenario())


def test_a_fill_waiting_for_its_second_count_survives_a_restart(seeded: Database, clock: FixedClock) -> None:
    """The controller restarts between the first count and the schedule II second count: the engine that starts
    next on the same store waits for the same fill, with its first count, and completes it; once done it is no
    longer in the journal."""

    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e = ph.engine
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            start = last_seq(seeded)
            ph.counter.pour(10)
            ph.scanner.present(gs1("0904-6966-61", "OX1", "280131", "B6"), "]d2")
            first = await e.execute(StartFill(OXYCODONE, 10, "RX106", "DOE, JO"))
            assert first.ok and first.data["state"] == "awaiting_second_count", first
            fill_id = first.unwrap().fill_id
            (first_seq,) = first.unwrap().ledger_seqs
            restarted = rig.make_engine(seeded, ph.cab.board, clock, devices=e.ctx.devices)
            assert (await restarted.restore()).ok
            waiting = restarted.query(GetCabinetStatus()).unwrap().live_workflows
            assert [(w["fill_id"], w["state"]) for w in waiting if w["kind"] == "fill"] == [
                (fill_id, "awaiting_second_count")
            ]
            assert (await restarted.execute(Login("PHARM1", pin="3333"))).ok
            ph.scanner.present(gs1("51655-102-30", "F77", "280131", "B7"), "]d2")
            busy = await restarted.execute(StartFill(FAMOTIDINE, 10, "RX107", "DOE, JO"))
            assert busy.code == "fsm.event_not_allowed", busy  # the recovered fill still waits
            ph.counter.pour(ph.counter.remove_vial())  # the vial poured back for the second count
            second = await restarted.execute(SecondCount(fill_id))
            assert second.ok and second.data["state"] == "filled", second
            assert second.unwrap().ledger_seqs[0] == first_seq  # the first count from before the restart
            assert ph.counter.vial == 10 and ph.printer.printed_count() == 1
            fields = label_fields(ph.printer.labels[-1])
            assert any("RX106" in f for f in fields) and any("OX1" in f for f in fields)
            got = _fill_entries(seeded, start)
            assert [k for k in got if k[1].startswith("fill.")] == [
                ("count.entered", "fill.first_count", "robot_fill_first_count"),
                ("fill.completed", "fill.completed", "robot_fill"),
            ]
            filled = json.loads(entries(seeded, start)[-1].body)
            assert (filled["lot_number"], filled["quantity_actual"], filled["details"]["second_count"]) == (
                "OX1",
                10,
                10,
            )
            assert (filled["details"]["fill_id"], filled["details"]["serial"]) == (fill_id, "B6")
            again = rig.make_engine(seeded, ph.cab.board, clock, devices=e.ctx.devices)
            assert (await again.restore()).ok
            assert not [w for w in again.query(GetCabinetStatus()).unwrap().live_workflows if w["kind"] == "fill"]
            assert chain_ok(seeded)

    run(scenario())
