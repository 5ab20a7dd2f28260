"""The outbox is written in the transaction of the ledger entry it reports: both or neither, on SQLite and
PostgreSQL. A failing observer fails the append; an outbox row that cannot be written takes the entry down with
it; a transaction rolled back after the append takes the messages with it; a stock change the store refuses
queues nothing. Entries that are not doses, and a removal of zero units, queue nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import SafetyError
from controller.integration.hl7.outbound import OutboxRecorder
from controller.store.database import Database
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger, SealedEntry
from tests.engine.rig import CABINET
from tests.integration.outbox_rig import append, outbox_ledger, outbox_rows, removal, returned, seed_patients, wasted


def ledger_state(db: Database) -> tuple[int, int]:
    with db.reader.connect() as connection:
        entries = connection.execute(sa.text("SELECT COUNT(*) FROM ledger_entries")).scalar_one()
        head = connection.execute(
            sa.text("SELECT last_seq FROM ledger_heads WHERE cabinet_id = :c"), {"c": CABINET}
        ).scalar_one()
    return int(entries), int(head)


class BoomError(Exception):
    pass


def test_each_dose_entry_queues_its_messages_with_it(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    ledger = outbox_ledger(clock)
    removed, back, waste = append(db, ledger, removal("MRN1", order="ORD1"), returned("MRN1"), wasted("MRN1"))
    rows = outbox_rows(db)
    assert [(r["ledger_seq"], r["control_id"], r["message_type"]) for r in rows] == [
        (removed.seq, f"L{removed.seq}-RDS", "RDS^O13"),
        (removed.seq, f"L{removed.seq}-DFT", "DFT^P03"),
        (back.seq, f"L{back.seq}-RDS", "RDS^O13"),
        (back.seq, f"L{back.seq}-DFT", "DFT^P03"),
        (waste.seq, f"L{waste.seq}-RDS", "RDS^O13"),  # a waste changes no charge
    ]
    assert {(r["status"], r["attempts"], r["patient_key"]) for r in rows} == {("pending", 0, "MRN1")}


def test_other_entries_and_a_removal_of_nothing_queue_nothing(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    before = ledger_state(db)
    append(
        db,
        outbox_ledger(clock),
        LedgerRecord(EventType.COUNT_ENTERED, actor_id="NURSE1", pocket_id="D2-P01", quantity_actual=9),
        LedgerRecord(EventType.LOGIN, actor_id="NURSE1"),
        removal("MRN1", units=0),
    )
    assert ledger_state(db)[0] == before[0] + 3
    assert outbox_rows(db) == []


def test_a_failing_observer_fails_the_append_and_nothing_is_written(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    before = ledger_state(db)

    def failing(_session: Session, _entry: SealedEntry, _record: LedgerRecord) -> None:
        raise BoomError("observer failed")

    ledger = Ledger(CABINET, clock, is_simulator=True, observers=[OutboxRecorder(), failing])
    with pytest.raises(BoomError):
        append(db, ledger, removal("MRN1"))
    assert ledger_state(db) == before
    assert outbox_rows(db) == []


def test_an_outbox_row_that_cannot_be_written_takes_the_entry_with_it(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    ledger = outbox_ledger(clock)
    append(db, ledger, removal("MRN1"))
    taken = outbox_rows(db)[0]
    before = ledger_state(db)
    # The next entry's control id is already taken (a row someone wrote by hand): its insert fails.
    clash = {k: v for k, v in taken.items() if k != "id"} | {"control_id": f"L{before[1] + 1}-RDS"}
    with db.write() as session:
        session.execute(sa.insert(sa.table("hl7_outbox", *(sa.column(k) for k in clash))).values(**clash))
    with pytest.raises(sa.exc.IntegrityError):
        append(db, ledger, removal("MRN2"))
    assert ledger_state(db) == before
    assert [r["patient_key"] for r in outbox_rows(db)] == ["MRN1", "MRN1", "MRN1"]


def test_a_transaction_rolled_back_after_the_append_leaves_neither(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    before = ledger_state(db)
    ledger = outbox_ledger(clock)
    with pytest.raises(BoomError), db.write() as session:
        ledger.append(session, removal("MRN1"))
        assert session.execute(sa.text("SELECT COUNT(*) FROM hl7_outbox")).scalar_one() == 2  # queued, uncommitted
        raise BoomError("the rest of the transaction failed")
    assert ledger_state(db) == before
    assert outbox_rows(db) == []


def test_a_stock_change_the_store_refuses_queues_nothing(db: Database, clock: FixedClock) -> None:
    seed_patients(db, clock)
    before = ledger_state(db)
    inventory = InventoryStore(outbox_ledger(clock))
    with pytest.raises(SafetyError) as refused, db.write() as session:
        inventory.apply(session, StockChange("D2-P01", "A1", -50), removal("MRN1", units=50))
    assert refused.value.code == "inventory.negative_quantity"
    assert ledger_state(db) == before
    assert outbox_rows(db) == []
    with db.write() as session:
        entry = inventory.apply(session, StockChange("D2-P01", "A1", -1), removal("MRN1"))
    assert [r["ledger_seq"] for r in outbox_rows(db)] == [entry.seq, entry.seq]
