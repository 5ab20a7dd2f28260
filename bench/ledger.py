"""Ledger benchmark: append rate against plain SQLAlchemy inserts of the same rows, and verification rate.

Each append is its own durable transaction (as every dose is); the baseline inserts the same rows (the same
body, prev_hash and hash, precomputed) into the same table of a twin database, one transaction per row, with the
same engine settings. The difference is what the ledger adds: locking and advancing the head, canonical JSON and
SHA-256.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from controller.domain.chain import GENESIS_HASH, entry_hash
from controller.domain.clock import FixedClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.store import schema
from controller.store.database import Database
from controller.store.ledger import Ledger, canonical_body, verify_chain
from controller.store.models import LedgerEntryRow, LedgerHeadRow


@dataclass
class Row:
    name: str
    count: int
    seconds: float
    baseline_seconds: float | None = None
    target: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def ratio(self) -> str:
        if self.baseline_seconds is None:
            return "—"
        return f"{self.baseline_seconds / self.seconds:.2f}"


def record(index: int) -> LedgerRecord:
    return LedgerRecord(
        EventType.DOSE_REMOVED,
        actor_id=f"NURSE{index % 7}",
        patient_id=f"MRN{index % 31:06d}",
        order_id=f"ORD{index}",
        item_id="HYDROMORPHONE-1MG-ML-SYR",
        pocket_id="D2-P02",
        lot_number="HM2410B",
        quantity_expected=10,
        quantity_actual=10,
        quantity_change=-1,
        device_state={"drawer": "D2", "lid": "closed"},
        details={"lot_expiry": "2027-10-31"},
    )


def fresh_db(url: str) -> Database:
    db = Database.open(url, create=True)
    schema.upgrade(db)
    return db


def bench_append(ledger_url: str, baseline_url: str, count: int) -> Row:
    clock = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
    ledger_db, baseline_db = fresh_db(ledger_url), fresh_db(baseline_url)
    ledger = Ledger("CAB-BENCH", clock, is_simulator=True)
    sealed = []
    started = time.perf_counter()
    for index in range(count):
        with ledger_db.write() as session:
            sealed.append(ledger.append(session, record(index)))
        clock.advance(timedelta(milliseconds=1))
    ledger_seconds = time.perf_counter() - started
    insert = sa.insert(LedgerEntryRow)
    started = time.perf_counter()
    for entry in sealed:
        with baseline_db.write() as session:
            session.execute(insert.values(body=entry.body, prev_hash=entry.prev_hash, hash=entry.hash))
    baseline_seconds = time.perf_counter() - started
    with ledger_db.reader.connect() as connection:
        assert verify_chain(connection).ok
    ledger_db.dispose()
    baseline_db.dispose()
    return Row(f"append, 1 txn each ({ledger_db.dialect})", count, ledger_seconds, baseline_seconds, ">= 0.5")


def build_chain(url: str, count: int, batch: int = 20_000) -> Database:
    """A verified-format chain of ``count`` entries, sealed exactly as ``Ledger.append`` seals them but inserted in
    bulk (appending 200,000 entries one by one would only time the appends again)."""
    db = fresh_db(url)
    clock = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
    prev_hash = GENESIS_HASH
    rows: list[dict[str, str]] = []
    with db.write() as session:
        connection = session.connection()
        for index in range(count):
            body = canonical_body(
                record(index), cabinet_id="CAB-BENCH", seq=index + 1, recorded_at=clock.now(), is_simulator=True
            )
            digest = entry_hash(prev_hash, body)
            rows.append({"body": body, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
            clock.advance(timedelta(milliseconds=1))
            if len(rows) == batch:
                connection.execute(sa.insert(LedgerEntryRow), rows)
                rows = []
        if rows:
            connection.execute(sa.insert(LedgerEntryRow), rows)
        connection.execute(sa.insert(LedgerHeadRow).values(cabinet_id="CAB-BENCH", last_seq=count, last_hash=prev_hash))
    return db


def raw_fetch_seconds(connection: sa.Connection, count: int) -> float:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    started = time.perf_counter()
    cursor.execute("SELECT seq, prev_hash, hash, body FROM ledger_entries ORDER BY seq")
    fetched = 0
    while batch := cursor.fetchmany(20_000):
        fetched += len(batch)
    seconds = time.perf_counter() - started
    cursor.close()
    assert fetched == count
    return seconds


def bench_verify(db: Database, count: int) -> list[Row]:
    rows = []
    with db.reader.connect() as connection:
        # The raw side: the same rows through the driver's own cursor, nothing else done with them.
        # Median of three runs each: the page cache is warm after the first and a 2-core machine is noisy.
        fetch_seconds = median(raw_fetch_seconds(connection, count) for _ in range(3))
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            report = verify_chain(connection)
            timings.append(time.perf_counter() - started)
        seconds = median(timings)
    assert report.ok and report.entries_checked == count
    rows.append(Row(f"verify_chain ({db.dialect})", count, seconds, fetch_seconds, ">= 200,000/s (SQLite)"))
    if db.dialect == "sqlite":
        env = {**os.environ, "ADC_DATABASE_URL": db.url.render_as_string(hide_password=False)}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "controller.cli.app", "ledger", "verify"], env=env, check=True, capture_output=True
        )
        rows.append(Row("adc ledger verify (process)", count, time.perf_counter() - started))
    return rows


def postgres_url() -> str | None:
    url = os.environ.get("ADC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception:
        return None
    return url


def postgres_schema(url: str, name: str) -> str:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    admin.dispose()
    return sa.make_url(url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)


def drop_postgres_schemas(url: str, *names: str) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    admin.dispose()


def run(appends: int, chain: int, console: Console) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="adc-bench-") as folder:
        base = Path(folder)
        console.print(f"appending {appends} entries on SQLite …")
        rows.append(bench_append(f"sqlite:///{base / 'ledger.db'}", f"sqlite:///{base / 'plain.db'}", appends))
        console.print(f"building a {chain}-entry chain on SQLite …")
        db = build_chain(f"sqlite:///{base / 'chain.db'}", chain)
        rows.extend(bench_verify(db, chain))
        db.dispose()
    pg = postgres_url()
    if pg is None:
        console.print("PostgreSQL not reachable: skipping its rows")
        return rows
    console.print(f"appending {appends} entries on PostgreSQL …")
    names = ("adc_bench_ledger", "adc_bench_plain", "adc_bench_chain")
    try:
        rows.append(bench_append(postgres_schema(pg, names[0]), postgres_schema(pg, names[1]), appends))
        pg_chain = chain
        db = build_chain(postgres_schema(pg, names[2]), pg_chain)
        rows.extend(bench_verify(db, pg_chain))
        db.dispose()
    finally:
        drop_postgres_schemas(pg, *names)
    return rows


def table(rows: list[Row]) -> Table:
    result = Table(title="Ledger benchmark")
    for column in ("measurement", "n", "seconds", "per second", "ratio to raw", "target"):
        result.add_column(column, justify="left" if column in ("measurement", "target") else "right")
    for row in rows:
        result.add_row(row.name, f"{row.count:,}", f"{row.seconds:.3f}", f"{row.rate:,.0f}", row.ratio, row.target)
    return result
