"""The ledger: sealing, verification, tamper detection, append-only enforcement and the record format."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa

from controller.domain.chain import GENESIS_HASH, ChainEntry, ChainHead, Verdict, entry_hash, judge
from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import SoftwareError
from controller.store.database import Database
from controller.store.ledger import Ledger, verify_chain
from tests.store.helpers import entry, triggers_disabled

CABINET = "CAB-T"


def append_many(db: Database, ledger: Ledger, count: int, clock: FixedClock) -> None:
    for index in range(count):
        with db.write() as session:
            ledger.append(
                session,
                LedgerRecord(
                    EventType.COUNT_ENTERED,
                    actor_id=f"U{index % 3}",
                    pocket_id="D1-P01",
                    quantity_expected=10,
                    quantity_actual=10,
                    details={"n": index},
                ),
            )
        clock.advance(timedelta(seconds=1))


def verify(db: Database):  # type: ignore[no-untyped-def]
    with db.reader.connect() as connection:
        return verify_chain(connection)


@pytest.fixture
def ledger(clock: FixedClock) -> Ledger:
    return Ledger(CABINET, clock, is_simulator=True)


def test_a_copy_of_the_chain_applies_the_sealed_entries_in_order(
    db: Database, ledger: Ledger, clock: FixedClock
) -> None:
    """What the ledger seals is what ``controller.domain.chain.judge`` expects of an arriving entry."""
    append_many(db, ledger, 4, clock)
    with db.reader.connect() as connection:
        rows = connection.execute(sa.text("SELECT seq, prev_hash, hash, body FROM ledger_entries ORDER BY seq")).all()
    head, held = ChainHead(), dict[int, str]()
    for row in rows:
        arriving = ChainEntry(CABINET, row.seq, row.prev_hash, row.hash, row.body)
        assert judge(head, arriving, held.get).verdict is Verdict.APPLY
        head, held[row.seq] = ChainHead(row.seq, row.hash), row.hash
        assert judge(head, arriving, held.get).verdict is Verdict.DUPLICATE


def test_entries_chain_from_genesis_with_gapless_sequence(db: Database, ledger: Ledger, clock: FixedClock) -> None:
    append_many(db, ledger, 5, clock)
    with db.reader.connect() as connection:
        rows = connection.execute(sa.text("SELECT seq, prev_hash, hash, body FROM ledger_entries ORDER BY seq")).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS_HASH
    for previous, current in pairwise(rows):
        assert current.prev_hash == previous.hash
    for row in rows:
        assert row.hash == entry_hash(row.prev_hash, row.body)
    report = verify(db)
    assert report.ok and report.entries_checked == 5 and report.cabinets == (CABINET,)


def test_body_is_canonical_json_with_every_field(db: Database, ledger: Ledger) -> None:
    record = LedgerRecord(
        EventType.WASTE_RECORDED,
        actor_id="NURSE1",
        witness_id="NURSE2",
        patient_id="MRN1",
        order_id="O1",
        item_id="MORPH",
        pocket_id="D2-P01",
        lot_number="L1",
        quantity_expected=None,
        quantity_actual=None,
        reason_code="partial_dose",
        note="half of 4 mg",
        device_state={"drawer": "closed"},
        details={"amount": "2", "unit": "mg"},
    )
    with db.write() as session:
        sealed = ledger.append(session, record)
    document = json.loads(sealed.body)
    assert sealed.body == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["witness_id"] == "NURSE2" and document["is_simulator"] is True
    assert document["recorded_at"] == "2026-11-25T14:30:00.000000Z"
    with db.read() as session:
        row = session.execute(
            sa.text("SELECT event_type, actor_id, witness_id, item_id, is_simulator, seq FROM ledger_entries")
        ).one()
    assert row.event_type == "dose.wasted" and row.witness_id == "NURSE2" and row.seq == 1
    assert bool(row.is_simulator) is True


def test_real_hardware_entries_are_stamped_as_not_simulated(db: Database, clock: FixedClock) -> None:
    with db.write() as session:
        sealed = Ledger(CABINET, clock, is_simulator=False).append(session, LedgerRecord(EventType.LOGIN))
    assert json.loads(sealed.body)["is_simulator"] is False


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"amount": 0.5}, "float"),
        ({"note": "a\x00b"}, "NUL"),
        ({1: "x"}, "non-text key"),
        ({"when": object()}, "object"),
    ],
)
def test_values_without_a_stable_json_form_are_refused(
    db: Database, ledger: Ledger, details: dict[object, object], message: str
) -> None:
    with pytest.raises(SoftwareError, match=message) as caught, db.write() as session:
        ledger.append(session, LedgerRecord(EventType.LOGIN, details=details))  # type: ignore[arg-type]
    assert caught.value.code == "ledger.invalid_entry"
    assert verify(db).entries_checked == 0


def test_stock_events_must_name_pocket_and_quantity(db: Database, ledger: Ledger) -> None:
    with pytest.raises(SoftwareError), db.write() as session:
        ledger.append(session, LedgerRecord(EventType.DOSE_REMOVED, item_id="X"))


def test_failed_transaction_leaves_no_entry_and_no_gap(db: Database, ledger: Ledger, clock: FixedClock) -> None:
    append_many(db, ledger, 2, clock)
    with pytest.raises(RuntimeError), db.write() as session:
        ledger.append(session, LedgerRecord(EventType.LOGIN))
        raise RuntimeError("hardware failed after the entry was written")
    append_many(db, ledger, 1, clock)
    report = verify(db)
    assert report.ok and report.entries_checked == 3


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET body = body",
        "UPDATE ledger_entries SET prev_hash = hash",
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_heads",
        "UPDATE ledger_heads SET last_seq = last_seq + 1",
        "UPDATE ledger_heads SET last_seq = last_seq - 1",
    ],
)
def test_database_refuses_to_change_or_delete_entries(
    db: Database, ledger: Ledger, clock: FixedClock, statement: str
) -> None:
    append_many(db, ledger, 3, clock)
    with (
        pytest.raises(sa.exc.DBAPIError, match=r"append-only|cannot be deleted|only advance"),
        db.writer.begin() as connection,
    ):
        connection.exec_driver_sql(statement)
    assert verify(db).ok


def test_postgres_refuses_truncate(db: Database, ledger: Ledger, clock: FixedClock) -> None:
    if db.dialect != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    append_many(db, ledger, 1, clock)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.writer.begin() as connection:
        connection.exec_driver_sql("TRUNCATE ledger_entries")


# --- tampering: each kind is detected and the right entry named -----------------------------------------------------


@pytest.fixture
def chain(db: Database, ledger: Ledger, clock: FixedClock) -> Database:
    append_many(db, ledger, 10, clock)
    assert verify(db).ok
    return db


def _set_body(connection: sa.Connection, row_id: int, body: str, prev_hash: str, digest: str) -> None:
    connection.execute(
        sa.text("UPDATE ledger_entries SET body = :b, prev_hash = :p, hash = :h WHERE id = :i"),
        {"b": body, "p": prev_hash, "h": digest, "i": row_id},
    )


def test_edited_entry_is_named(chain: Database) -> None:
    with triggers_disabled(chain) as connection:
        target = entry(connection, 4)
        edited = target.body.replace('"quantity_actual":10', '"quantity_actual":9')
        assert edited != target.body
        _set_body(connection, target.id, edited, target.prev_hash, target.hash)
    report = verify(chain)
    assert not report.ok
    (problem,) = report.problems
    assert (problem.seq, problem.kind) == (4, "altered")


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(chain: Database) -> None:
    """An attacker who also fixes the edited entry's own hash is caught at the following entry."""
    with triggers_disabled(chain) as connection:
        target = entry(connection, 6)
        edited = target.body.replace('"actor_id":"U2"', '"actor_id":"U0"')
        assert edited != target.body
        _set_body(connection, target.id, edited, target.prev_hash, entry_hash(target.prev_hash, edited))
    (problem,) = verify(chain).problems
    assert (problem.seq, problem.kind) == (7, "out_of_chain")


def test_deleted_entry_is_named(chain: Database) -> None:
    with triggers_disabled(chain) as connection:
        connection.execute(sa.text("DELETE FROM ledger_entries WHERE id = :i"), {"i": entry(connection, 5).id})
    (problem,) = verify(chain).problems
    assert (problem.seq, problem.kind) == (5, "missing")
    assert "#6" in problem.detail


def test_entries_cut_from_the_end_are_noticed(chain: Database) -> None:
    with triggers_disabled(chain) as connection:
        connection.execute(sa.text("DELETE FROM ledger_entries WHERE seq > 8"))
    (problem,) = verify(chain).problems
    assert (problem.seq, problem.kind) == (9, "truncated")


def test_reordered_entries_are_named(chain: Database) -> None:
    """Swap entries 3 and 4 (renumbered, each with a self-consistent hash): the chain link breaks at #3."""
    with triggers_disabled(chain) as connection:
        third, fourth = entry(connection, 3), entry(connection, 4)
        new_third = fourth.body.replace('"seq":4', '"seq":3')
        new_fourth = third.body.replace('"seq":3', '"seq":4')
        # Move one out of the way first: (cabinet_id, seq) is unique.
        _set_body(connection, third.id, third.body.replace('"seq":3', '"seq":999'), third.prev_hash, "x" * 64)
        _set_body(connection, fourth.id, new_third, fourth.prev_hash, entry_hash(fourth.prev_hash, new_third))
        _set_body(connection, third.id, new_fourth, third.prev_hash, entry_hash(third.prev_hash, new_fourth))
    (problem,) = verify(chain).problems
    assert (problem.seq, problem.kind) == (3, "out_of_chain")


def test_inserted_entry_is_named(chain: Database, clock: FixedClock) -> None:
    """Insert a forged entry after #7 and renumber the rest: the forged entry itself breaks the chain."""
    with triggers_disabled(chain) as connection:
        later = connection.execute(sa.text("SELECT id, body FROM ledger_entries WHERE seq > 7 ORDER BY seq DESC")).all()
        for row in later:  # renumber from the end so (cabinet, seq) stays unique
            seq = json.loads(row.body)["seq"]
            connection.execute(
                sa.text("UPDATE ledger_entries SET body = :b WHERE id = :i"),
                {"b": row.body.replace(f'"seq":{seq}', f'"seq":{seq + 1}'), "i": row.id},
            )
        seventh = entry(connection, 7)
        forged = seventh.body.replace('"seq":7', '"seq":8').replace('"quantity_actual":10', '"quantity_actual":0')
        connection.execute(
            sa.text("INSERT INTO ledger_entries (body, prev_hash, hash) VALUES (:b, :p, :h)"),
            {"b": forged, "p": "f" * 64, "h": entry_hash("f" * 64, forged)},
        )
    (problem,) = verify(chain).problems
    assert (problem.seq, problem.kind) == (8, "out_of_chain")


def test_each_cabinet_has_its_own_chain(db: Database, clock: FixedClock) -> None:
    first, second = Ledger("CAB-A", clock, is_simulator=False), Ledger("CAB-B", clock, is_simulator=False)
    for _ in range(3):
        with db.write() as session:
            first.append(session, LedgerRecord(EventType.LOGIN))
            second.append(session, LedgerRecord(EventType.LOGIN))
    report = verify(db)
    assert report.ok and report.cabinets == ("CAB-A", "CAB-B") and report.entries_checked == 6
    with triggers_disabled(db) as connection:
        connection.execute(sa.text("DELETE FROM ledger_entries WHERE cabinet_id = 'CAB-B' AND seq = 1"))
    (problem,) = verify(db).problems
    assert (problem.cabinet_id, problem.seq, problem.kind) == ("CAB-B", 1, "missing")
