"""A removal's entries are found by ``details.pull_id`` through an index, on SQLite and PostgreSQL (the look-up the
engine's waste and return handlers make through ``CabinetReader.removal``)."""

from __future__ import annotations

import sqlalchemy as sa

from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.json_fields import DetailField
from controller.store.ledger import Ledger
from controller.store.models import LedgerEntryRow
from controller.store.removals import _KINDS


def _query(pull_id: str) -> sa.Select[int]:
    """As ``controller.store.removals.find_removal`` asks it (no ORDER BY: see there)."""
    return sa.select(LedgerEntryRow.seq).where(
        LedgerEntryRow.cabinet_id == "CAB-I",
        LedgerEntryRow.event_type.in_(_KINDS),
        DetailField("pull_id") == pull_id,
    )


def test_entries_are_found_by_pull_id(db: Database, clock: FixedClock) -> None:
    ledger = Ledger("CAB-I", clock, is_simulator=True)
    with db.write() as session:
        for n in range(400):
            kind = EventType.WASTE_RECORDED if n % 2 else EventType.WASTE_PENDING
            ledger.append(session, LedgerRecord(kind, details={"pull_id": f"PULL-{n % 80}"}))
        # A pull's own entries of another kind (its blind count) are not part of its removal.
        ledger.append(session, LedgerRecord(EventType.COUNT_ENTERED, details={"pull_id": "PULL-3"}))
        # A pull id that only appears inside another field must not match (the old text search would).
        ledger.append(session, LedgerRecord(EventType.LOGIN, note="PULL-3", details={"other": "PULL-3"}))
    with db.read() as session:
        seqs = sorted(session.execute(_query("PULL-3")).scalars())
        bodies = session.execute(sa.select(LedgerEntryRow.seq, LedgerEntryRow.body)).all()
    expected = [seq for seq, body in bodies
                if '"pull_id":"PULL-3"' in body.replace(" ", "") and "count.entered" not in body]  # fmt: skip
    assert seqs == expected
    assert len(seqs) == 5


def test_the_look_up_uses_the_index(db: Database, clock: FixedClock) -> None:
    test_entries_are_found_by_pull_id(db, clock)  # a ledger of 400 entries, never ANALYZEd
    with db.reader.connect() as connection:
        statement = _query("PULL-1").compile(connection, compile_kwargs={"literal_binds": True})
        if db.dialect == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all()
            text = " ".join(str(row[-1]) for row in plan)
        else:
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}").all()
            text = " ".join(str(row[0]) for row in plan)
    assert "ix_ledger_entries_pull_id" in text, text
