"""What the outbound messages say, read back with python-hl7 (not our parser): a real pull through the engine
(built by ``build_engine`` with the outbox observer, the board driver on the simulator over Modbus TCP) of an
order that came in by HL7 gives an RDS^O13 and a DFT^P03 naming the patient, the pharmacy's order numbers, the
NDC, lot and expiry, the units and the charge; a return gives a negative dispense and a credit; a waste a
dispense note and no charge. Field positions are checked against the public RDS/DFT samples read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from controller.bootstrap.cabinet import build_engine
from controller.bootstrap.hardware import DeviceReport, Hardware
from controller.domain.clock import FixedClock
from controller.engine.commands import EnterCount, Login, SelectItem, StartPull, Take
from controller.integration.hl7 import open_listener
from controller.integration.hl7.inbound import read_frame
from controller.integration.hl7.outbound import OutboxRecorder
from controller.settings import Settings
from controller.store.database import Database
from controller.store.models import Hl7PatientMergeRow, PatientRow
from tests.engine.rig import CABINET, MORPHINE, open_cabinet, seed
from tests.hardware.io_board.rigs import run
from tests.integration.hl7_rig import MllpClient, rde
from tests.integration.outbox_rig import (
    append,
    field_of,
    outbox_ledger,
    outbox_rows,
    parse,
    removal,
    returned,
    seed_patients,
    wasted,
)


def messages(db: Database) -> dict[str, Any]:
    return {row["control_id"]: parse(row["payload"]) for row in outbox_rows(db)}


def test_a_pull_through_the_engine_queues_its_dispense_and_charge(db: Database, clock: FixedClock) -> None:
    seed(db, clock)  # CAB-E: morphine in D2-P01 (lots OLD expired, A1 2027-01-31, B2), patient MRN1 in the ICU
    run(order_and_pull(db, clock), timeout=60)
    with db.reader.connect() as connection:
        seq = connection.execute(
            sa.text("SELECT seq FROM ledger_entries WHERE event_type = 'dose.removed' AND cabinet_id = :c"),
            {"c": CABINET},
        ).scalar_one()
    found = messages(db)
    assert sorted(found) == [f"L{seq}-DFT", f"L{seq}-RDS"]
    rds, dft = found[f"L{seq}-RDS"], found[f"L{seq}-DFT"]
    for message, kind in ((rds, "RDS^O13^RDS_O13"), (dft, "DFT^P03^DFT_P03")):
        assert str(message.segment("MSH")[9]) == kind
        assert field_of(message, "MSH", 4) == CABINET
        assert field_of(message, "MSH", 11) == "T"  # the board is a simulator: never billed as real
        assert field_of(message, "MSH", 12) == "2.5.1"
        assert field_of(message, "PID", 3) == "MRN1"
        assert (field_of(message, "PID", 5, 1), field_of(message, "PID", 5, 2)) == ("Doe", "Jo")
        assert field_of(message, "PV1", 3) == "ICU"
        assert field_of(message, "PV1", 19) == "ENC1"
    assert [field_of(rds, "ORC", n) for n in (1, 2, 3)] == ["RE", "RX-100", "F-777"]
    assert field_of(rds, "RXD", 2, 1) == "0409-1891-01"
    assert field_of(rds, "RXD", 2, 3) == "NDC"
    assert [field_of(rds, "RXD", n) for n in (4, 5, 7, 10, 18, 19)] == [
        "1", "syringe", "RX-100", "NURSE1", "A1", "20270131"  # FEFO skipped the expired lot OLD
    ]  # fmt: skip
    assert "removed from CAB-E pocket D2-P01" in field_of(rds, "RXD", 9)
    assert [field_of(dft, "FT1", n) for n in (2, 6, 7, 10, 13, 20, 23)] == [
        f"{CABINET}-{seq}", "CG", MORPHINE, "1", CABINET, "NURSE1", "F-777"
    ]  # fmt: skip
    assert (field_of(dft, "FT1", 29, 1), field_of(dft, "FT1", 29, 3)) == ("00409189101", "NDC")
    assert field_of(dft, "EVN", 1) == "P03"
    for row in outbox_rows(db):  # our own reader takes them as well-formed messages
        inbound = read_frame(row["payload"].encode())
        assert inbound.problem is None and inbound.header is not None
        assert inbound.header.control_id == row["control_id"]


async def order_and_pull(db: Database, clock: FixedClock) -> None:
    """An RDE^O11 (placer RX-100, filler F-777) over MLLP, then a nurse's pull of one unit against it."""
    listener = await open_listener(db, clock)
    client = await MllpClient.connect(listener.address)
    try:
        order = rde("O-1", "RX-100", "MRN1", give="0409-1891-03^morphine^NDC", tq1="TQ1|1||Q4H")
        order = order.replace(b"ORC|NW|RX-100^PHARM|", b"ORC|NW|RX-100^PHARM|F-777^PHARMSYS")
        assert (await client.send(order)).code == "AA"
    finally:
        await client.close()
        await listener.close()
    async with open_cabinet("tcp") as cab:
        hardware = Hardware(io_board=cab.board, reports=[DeviceReport("io_board", "sim", True, True, {})])
        settings = Settings(cabinet_id=CABINET, argon2_time_cost=1, argon2_memory_kib=8)
        engine = build_engine(settings, hardware, db=db, clock=clock, ledger_observers=[OutboxRecorder()])
        assert (await engine.restore()).ok
        assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
        pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
        assert (await engine.execute(SelectItem(pull_id, order_id="RX-100"))).ok
        assert (await engine.execute(EnterCount(pull_id, 9))).ok
        cab.world.open_drawer(2)
        await engine.poll()
        cab.world.lift_lid(2, 1)
        await engine.poll()
        assert (await engine.execute(Take(pull_id, 1))).ok
        cab.world.close_lid(2, 1)
        await engine.poll()
        cab.world.close_drawer(2)
        await engine.poll()


def test_the_public_samples_put_the_same_things_in_the_same_places(shared_external: Path) -> None:
    def sample(name: str) -> Any:
        text = (shared_external / "hl7" / name).read_bytes().decode("utf-8-sig")
        return parse(text.replace("\r\n", "\r").replace("\n", "\r"))

    dft, rds = sample("msft_DFT-P03-01.hl7"), sample("msft_RDS-O13-01.hl7")
    assert (field_of(dft, "FT1", 6), field_of(dft, "FT1", 10)) == ("CG", "2")
    assert (field_of(dft, "FT1", 29, 1), field_of(dft, "FT1", 29, 3)) == ("0182-1061-05", "NDC")
    assert (field_of(rds, "RXD", 2, 3), field_of(rds, "RXD", 4), field_of(rds, "RXD", 7)) == ("NDC", "10", "PN12345")


def test_a_return_is_credited_and_a_waste_is_noted_without_a_charge(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    back, waste = append(db, outbox_ledger(clock), returned("MRN2", units=2), wasted("MRN2"))
    found = messages(db)
    assert sorted(found) == sorted([f"L{back.seq}-RDS", f"L{back.seq}-DFT", f"L{waste.seq}-RDS"])
    credit, noted = found[f"L{back.seq}-RDS"], found[f"L{waste.seq}-RDS"]
    assert field_of(credit, "RXD", 4) == "-2"
    assert field_of(credit, "RXD", 9) == "returned 2 syringe to return_bin at CAB-E pocket D2-P01"
    charge = found[f"L{back.seq}-DFT"]
    assert [field_of(charge, "FT1", n) for n in (6, 10)] == ["CD", "2"]
    assert (field_of(charge, "PV1", 3, 1), field_of(charge, "PV1", 3, 2)) == ("ICU", "102")
    assert field_of(noted, "RXD", 4) == "0"
    assert field_of(noted, "RXD", 9) == "wasted 2 mg at CAB-E, reason partial_dose, partial dose, witness NURSE2"


@pytest.mark.parametrize("simulated", [False, True])
def test_only_entries_made_on_real_hardware_are_sent_for_production(
    db: Database, clock: FixedClock, simulated: bool
) -> None:
    seed_patients(db, clock)
    append(db, outbox_ledger(clock, is_simulator=simulated), removal("MRN1"))
    assert {field_of(m, "MSH", 11) for m in messages(db).values()} == {"T" if simulated else "P"}


def test_names_are_escaped_and_a_merged_patient_is_sent_under_the_surviving_id(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    with db.write() as session:
        patient = session.get(PatientRow, "MRN3")
        assert patient is not None
        patient.family_name = "O|Brien^Smith&Co~\\"
        session.add(Hl7PatientMergeRow(prior_patient_id="OLD-9", survivor_id="MRN3", merged_at=clock.now(),
                                       control_id="A40-1"))  # fmt: skip
    append(db, outbox_ledger(clock), removal("OLD-9"))
    for row in outbox_rows(db):
        assert "||O\\F\\Brien\\S\\Smith\\T\\Co\\R\\\\E\\^Test" in row["payload"]  # escaped on the wire
        message = parse(row["payload"])
        assert field_of(message, "PID", 3) == "MRN3"
        assert field_of(message, "PID", 5) == "O|Brien^Smith&Co~\\"  # and read back whole
    assert {row["patient_key"] for row in outbox_rows(db)} == {"MRN3"}
