"""HL7 outbound benchmark: how fast the outbox drains to a receiver, and what queueing costs a dose entry.

Setup: a fresh store with the demo cabinet; N/2 ``dose.removed`` entries for the demo's patients are appended
through a ledger carrying the outbox observer, so N messages (an RDS^O13 and a DFT^P03 each) wait in
``hl7_outbox``. A fast receiver on loopback (asyncio, same process) answers each frame at once with an AA naming
its MSH-10.

- "sender": ``OutboxSender`` drains the queue: read what is due, send each message, wait for its ACK, commit it
  as delivered (one durable transaction per message: SQLite WAL, ``synchronous=FULL``), in order per patient.
- "bare MLLP loop": the same payloads, already in memory, sent one at a time over one connection to the same
  receiver, waiting for each ACK, nothing stored. "vs bare" = sender rate / bare rate.
- "commit floor": one durable SQLite commit per message and nothing else (as in the ingest benchmark); the sender
  cannot beat it on SQLite. "vs floor" = sender rate / floor rate.
- the enqueue cost: appends per second through a ledger with the observer (each composing and queueing two
  messages in the entry's transaction) against the same appends without it.

PostgreSQL rows are added when it answers (``ADC_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.hl7_ingest import commit_floor
from bench.ledger import drop_postgres_schemas, postgres_schema, postgres_url
from controller.domain.clock import FixedClock, SystemClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.domain.transactions import EventType, LedgerRecord
from controller.integration.hl7.mllp import Frame, MllpDecoder, frame
from controller.integration.hl7.outbound import OutboxRecorder, OutboxSender, RetryPolicy
from controller.integration.hl7.outbound import queue as outbox
from controller.store import schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import demo_layout, seed_cabinet

CABINET = "CAB-4W"
PATIENTS = ("MRN100001", "MRN100002", "MRN100003", "MRN100004", "MRN100005")
ITEM, POCKET = "HYDROMORPHONE-1MG-ML-SYR", "D2-P02"


@dataclass
class Row:
    setup: str
    count: int
    seconds: float
    unit: str = "msg/s"
    baseline: float | None = None  # rate of what "vs" compares with
    floor: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def removal(patient: str) -> LedgerRecord:
    return LedgerRecord(
        event_type=EventType.DOSE_REMOVED,
        actor_id="NURSE1",
        patient_id=patient,
        item_id=ITEM,
        pocket_id=POCKET,
        lot_number="HM2401",
        quantity_actual=1,
        quantity_change=-1,
        details={"pull_id": "PULL-BENCH", "override": False},
    )


def fresh_store(url: str, clock: FixedClock) -> Database:
    db = Database.open(url, create=True)
    schema.upgrade(db)
    with db.write() as session:
        seed_cabinet(
            session,
            demo_layout(),
            load_formulary(),
            ledger=Ledger(CABINET, clock, is_simulator=True),
            hasher=CredentialHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1)),
            clock=clock,
        )
    return db


def append_entries(db: Database, ledger: Ledger, count: int) -> float:
    """Seconds to append ``count`` removals, one transaction each."""
    started = time.perf_counter()
    for index in range(count):
        with db.write() as session:
            ledger.append(session, removal(PATIENTS[index % len(PATIENTS)]))
    return time.perf_counter() - started


async def _receiver() -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MllpDecoder()
        while data := await reader.read(64 * 1024):
            for item in decoder.feed(data):
                control_id = item.payload.split(b"|", 10)[9] if isinstance(item, Frame) else b""
                writer.write(
                    frame(b"MSH|^~\\&|RCV|BENCH|||20261125120000||ACK|A|P|2.5.1\rMSA|AA|" + control_id + b"\r")
                )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _drain(db: Database) -> float:
    server = await _receiver()
    host, port = server.sockets[0].getsockname()[:2]
    sender = OutboxSender(
        db, SystemClock(), cabinet_id=CABINET, host=host, port=port, policy=RetryPolicy(), rng=random.Random(1)
    )
    try:
        started = time.perf_counter()
        while await sender.drain_once():
            pass
        return time.perf_counter() - started
    finally:
        await sender.close()
        server.close()
        await server.wait_closed()


async def _bare(payloads: list[bytes]) -> float:
    server = await _receiver()
    host, port = server.sockets[0].getsockname()[:2]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        started = time.perf_counter()
        for payload in payloads:
            writer.write(frame(payload))
            await writer.drain()
            answer = await reader.readuntil(b"\x1c\x0d")
            if b"MSA|AA|" not in answer:
                raise RuntimeError(f"not accepted: {answer!r}")
        return time.perf_counter() - started
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


def measure(name: str, url: str, messages: int, console: Console) -> tuple[list[Row], list[bytes]]:
    clock = FixedClock(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    entries = messages // 2
    db = fresh_store(url, clock)
    try:
        plain = append_entries(db, Ledger(CABINET, clock, is_simulator=True), entries)  # queues nothing
        queued = append_entries(db, Ledger(CABINET, clock, is_simulator=True, observers=[OutboxRecorder()]), entries)
        payloads = [row["payload"] for row in _payloads(db)]
        console.print(f"HL7 out: draining {len(payloads)} messages on {name} …")
        seconds = asyncio.run(_drain(db))
        left = outbox.counts(db, CABINET)
        if left["pending"] or left["parked"] or left["delivered"] != len(payloads):
            raise RuntimeError(f"the outbox did not drain: {left}")
    finally:
        db.dispose()
    rows = [
        Row(f"sender, {name}", len(payloads), seconds),
        Row(f"append + enqueue, {name}", entries, queued, "entries/s", baseline=entries / plain),
        Row(f"append alone, {name}", entries, plain, "entries/s"),
    ]
    return rows, [p.encode() for p in payloads]


def _payloads(db: Database) -> list[dict[str, str]]:
    with db.reader.connect() as connection:
        result = connection.execute(outbox.OUTBOX.select().order_by(outbox.OUTBOX.c.id))
        return [dict(row._mapping) for row in result]


def run(console: Console, messages: int = 2_000) -> Table:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="adc-bench-hl7-out-") as folder:
        measured, payloads = measure("SQLite", f"sqlite:///{Path(folder) / 'out.db'}", messages, console)
        bare = Row("bare MLLP loop", len(payloads), asyncio.run(_bare(payloads)))
        floor = commit_floor(Path(folder) / "floor.db", len(payloads))
        rows += [bare, Row("SQLite commit floor", floor.count, floor.seconds)]
        measured[0].baseline, measured[0].floor = bare.rate, floor.rate
        rows += measured
    pg = postgres_url()
    if pg is None:
        console.print("PostgreSQL not reachable: skipping its rows")
    else:
        try:
            on_pg, _ = measure("PostgreSQL", postgres_schema(pg, "adc_bench_hl7_out"), messages, console)
            on_pg[0].baseline = bare.rate
            rows += on_pg
        finally:
            drop_postgres_schemas(pg, "adc_bench_hl7_out")
    return table(rows)


def table(rows: list[Row]) -> Table:
    result = Table(title="HL7 outbound: outbox drain to a loopback MLLP receiver (AA each), and the enqueue cost")
    for column in ("setup", "count", "rate", "unit", "vs bare / vs plain", "vs floor"):
        result.add_column(column, justify="left" if column in ("setup", "unit") else "right")
    for row in rows:
        result.add_row(
            row.setup,
            str(row.count),
            f"{row.rate:,.0f}",
            row.unit,
            f"{row.rate / row.baseline:.3f}" if row.baseline else "—",
            f"{row.rate / row.floor:.2f}" if row.floor else "—",
        )
    return result
