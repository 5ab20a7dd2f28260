"""The central's ingest on PostgreSQL: each cabinet's chain applied exactly once and in order, whatever order and
however often its entries arrive; contradictions become alarms naming cabinet and seq."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text

from controller.domain.chain import ChainEntry, entry_hash
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.central import tables as t
from controller.store.database import Database
from tests.fleet.chains import START, body, chain

pytestmark = pytest.mark.postgres


def _register(db: Database, *cabinets: str, now: datetime) -> None:
    with db.writer.begin() as connection:
        for cabinet in cabinets:
            central.register_cabinet(connection, cabinet, name=cabinet, care_area="4W", public_key="k", now=now)


def _ingest(db: Database, entries: list[ChainEntry], now: datetime) -> central.IngestResult:
    with db.writer.begin() as connection:
        return central.ingest(connection, entries, now=now)


def _alarms(db: Database) -> list[tuple[str, int, str]]:
    with db.reader.connect() as connection:
        rows = connection.execute(select(t.alarms.c.cabinet_id, t.alarms.c.seq, t.alarms.c.code)).all()
    return sorted((r.cabinet_id, r.seq, r.code) for r in rows)


def test_entries_apply_in_order_and_a_redelivery_is_dropped(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    entries = chain("CAB-A", 5)
    assert _ingest(central_db, entries[:3], now).applied == 3
    again = _ingest(central_db, entries, now)  # 1-3 redelivered with 4-5
    assert [o.verdict for o in again.outcomes] == ["duplicate"] * 3 + ["apply"] * 2
    with central_db.reader.connect() as connection:
        assert central.chain_of(connection, "CAB-A") == entries
        assert central.head_of(connection, "CAB-A") == central.ChainHead(5, entries[-1].hash)
    assert _alarms(central_db) == []


def test_an_early_entry_is_held_until_the_gap_closes(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    entries = chain("CAB-A", 6)
    early = _ingest(central_db, [entries[4], entries[5]], now)
    assert [o.verdict for o in early.outcomes] == ["held", "held"]
    assert early.resend_from == {}  # out of order between workers, most likely: no resend yet
    later = now + central.RESEND_AFTER + timedelta(seconds=1)
    assert _ingest(central_db, entries[:2], later).resend_from == {"CAB-A": 3}  # still waiting: ask for 3 on
    _ingest(central_db, entries[2:3], now)
    closing = _ingest(central_db, [entries[3]], now)  # seq 4 arrives: 5 and 6 follow from the held entries
    assert closing.applied == 3
    with central_db.reader.connect() as connection:
        assert central.chain_of(connection, "CAB-A") == entries
        assert connection.execute(select(func.count()).select_from(t.held)).scalar() == 0


def test_a_rewrite_from_a_point_is_a_fork_alarm_and_is_not_applied(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    original = chain("CAB-A", 6)
    _ingest(central_db, original[:4], now)
    # Someone with write access to the cabinet's store rewrites from seq 3, recomputing every hash.
    rewritten = original[:2] + chain("CAB-A", 4, start_seq=3, prev=original[1].hash, note="altered")
    result = _ingest(central_db, rewritten, now)
    verdicts = {o.entry.seq: o.verdict for o in result.outcomes}
    assert verdicts[3] == "fork" and verdicts[4] == "fork"
    assert verdicts[5] == "fork"  # its predecessor is the rewritten 4, not the 4 the central holds
    assert ("CAB-A", 3, "fleet.chain_fork") in _alarms(central_db)
    with central_db.reader.connect() as connection:
        assert central.chain_of(connection, "CAB-A") == original[:4]


def test_an_altered_body_and_a_misaddressed_entry_are_alarms(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    first = chain("CAB-A", 1)[0]
    altered = ChainEntry(
        "CAB-A", 1, first.prev_hash, first.hash, first.body.replace('"quantity_change":-1', '"quantity_change":-9')
    )
    other_body = body("CAB-B", 1)
    misaddressed = ChainEntry("CAB-A", 1, first.prev_hash, entry_hash(first.prev_hash, other_body), other_body)
    result = _ingest(central_db, [altered, misaddressed], now)
    assert {o.code for o in result.outcomes} == {"fleet.entry_hash_mismatch", "fleet.entry_mismatch"}
    assert result.applied == 0
    assert _ingest(central_db, [first], now).applied == 1  # the true entry still applies


def test_an_entry_from_the_future_is_applied_and_flagged(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    late = now + timedelta(hours=3)
    text_ = body("CAB-A", 1, at=late)
    entry = ChainEntry("CAB-A", 1, "0" * 64, entry_hash("0" * 64, text_), text_)
    assert _ingest(central_db, [entry], now).applied == 1
    assert _alarms(central_db) == [("CAB-A", 1, "fleet.entry_from_future")]


def test_the_ledger_is_partitioned_by_month_and_append_only(central_db: Database, now: datetime) -> None:
    _register(central_db, "CAB-A", now=now)
    old = START.replace(year=2019)  # outside every partition made: lands in the default one
    entries = [
        ChainEntry("CAB-A", 1, "0" * 64, entry_hash("0" * 64, body("CAB-A", 1, at=old)), body("CAB-A", 1, at=old))
    ]
    prev = entries[0].hash
    for seq in (2, 3):
        text_ = body("CAB-A", seq, at=now)
        entries.append(ChainEntry("CAB-A", seq, prev, entry_hash(prev, text_), text_))
        prev = entries[-1].hash
    with central_db.writer.begin() as connection:  # the partitions around the entries' month, whatever today is
        central_schema.ensure_partitions(connection, now.date())
    _ingest(central_db, entries, now)
    with central_db.reader.connect() as connection:
        placed = connection.execute(
            text("SELECT tableoid::regclass::text AS part, count(*) FROM fleet_ledger GROUP BY 1 ORDER BY 1")
        ).all()
    assert [(p.split(".")[-1], n) for p, n in placed] == [("fleet_ledger_2026_12", 2), ("fleet_ledger_default", 1)]
    with pytest.raises(Exception, match="append-only"), central_db.writer.begin() as connection:
        connection.execute(text("UPDATE fleet_ledger SET quantity_change = -5 WHERE seq = 2"))
    with pytest.raises(Exception, match="append-only"), central_db.writer.begin() as connection:
        connection.execute(text("DELETE FROM fleet_ledger WHERE seq = 3"))
    for table in ("fleet_ledger", "fleet_ledger_2026_12", "fleet_ledger_default"):
        with pytest.raises(Exception, match="append-only"), central_db.writer.begin() as connection:
            connection.execute(text(f"TRUNCATE {table}"))
    with central_db.reader.connect() as connection:
        assert len(central.chain_of(connection, "CAB-A")) == 3


def test_concurrent_workers_apply_each_entry_once(central_db: Database, now: datetime) -> None:
    cabinets = [f"CAB-{i}" for i in range(4)]
    _register(central_db, *cabinets, now=now)
    chains = {c: chain(c, 60) for c in cabinets}
    # Three workers each take interleaved slices, out of order and with overlaps.
    slices = [[e for c in cabinets for e in chains[c] if e.seq % 3 == k or e.seq % 7 == 0] for k in range(3)]
    errors: list[BaseException] = []

    def work(batch: list[ChainEntry]) -> None:
        try:
            for start in range(0, len(batch), 17):
                _ingest(central_db, list(reversed(batch[start : start + 17])), now)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in slices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with central_db.reader.connect() as connection:
        for cabinet in cabinets:
            assert central.chain_of(connection, cabinet) == chains[cabinet]
    assert _alarms(central_db) == []


def test_a_new_key_keeps_the_registered_console_address(central_db: Database, now: datetime) -> None:
    def register(**console: str) -> None:
        with central_db.writer.begin() as connection:
            central.register_cabinet(connection, "CAB-C", name="C", care_area="4W", public_key="k1", now=now, **console)

    def held() -> tuple[str, str | None]:
        with central_db.reader.connect() as connection:
            row = connection.execute(select(t.cabinets.c.public_key, t.cabinets.c.console_url)).one()
            return row.public_key, row.console_url

    register(console_url="http://cab-c:8000/pharmacy/")
    with central_db.writer.begin() as connection:  # re-keyed without naming the console again
        central.register_cabinet(connection, "CAB-C", name="C", care_area="4W", public_key="k2", now=now)
    assert held() == ("k2", "http://cab-c:8000/pharmacy/")
    register(console_url="https://cab-c.example/pharmacy/")
    assert held() == ("k1", "https://cab-c.example/pharmacy/")


def test_the_table_definitions_match_the_migrations(central_db: Database) -> None:
    inspector = inspect(central_db.writer)
    for table in t.metadata.sorted_tables:
        migrated = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        defined = {c.name: c.nullable for c in table.columns}
        assert migrated == defined, table.name
