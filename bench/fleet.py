"""Fleet benchmark: cabinets' ledger entries through NATS JetStream into the central's PostgreSQL ledger.

Everything runs on this machine: a private ``nats-server -js`` (file store in a temporary directory), PostgreSQL
(a fresh ``bench_fleet_<random>`` schema per scenario, migrated with ``controller.store.central.schema.upgrade``,
all dropped at the end), and the ``CentralWorker`` s in this process. Entries are real signed chain entries
(Ed25519 per cabinet, SHA-256 chain, bodies in the cabinet's canonical JSON: dose removals naming pocket, lot,
expiry and the lot's quantity after, as the inventory store writes them, so every applied entry also moves the
central's stock view, ``controller.store.central.stock``), published with their
``Nats-Msg-Id`` and ``Adc-Signature`` headers exactly as the forwarder publishes them.

Rows:

* **ingest, online**: 50 registered cabinets, 20,000 pre-signed entries (400 per cabinet, interleaved so each
  cabinet's entries go out in seq order) published by one asyncio publisher paced at 1,500/s, while 1 (then 3)
  ``CentralWorker`` s run in the same process. throughput = entries / wall time from the first publish until every
  cabinet's head in ``fleet_heads`` equals its last seq. p50/p99 = "published → committed at the central": each
  entry's publish time against the time a poll of ``fleet_heads`` (every 20 ms) first saw its cabinet's head at or
  past its seq (so a few ms to 20 ms of the figure is the poll). With the publisher paced at 1,500/s, the online
  throughput cannot exceed ~1,500/s: it says the worker keeps up, not how far it could go.
* **ingest, backlog**: the same 20,000 published first with no worker running, then the worker(s) started: entries
  / time from starting them until every head is at its last seq (the worker's capacity on this machine).
* **raw**: the same 20,000 rows (the column dicts ``controller.store.central.ledger._row`` builds) into the same
  partitioned, indexed ``fleet_ledger`` of a fresh schema, 500 per transaction: a bare SQLAlchemy
  ``connection.execute(insert(fleet_ledger), rows)`` executemany, and psycopg ``COPY ... FROM STDIN``. No JetStream,
  no JSON, no signatures, no chain checks, no heads; median of three runs, each into a fresh schema. **ratio to
  raw** = our throughput / the bare executemany throughput (1.00 would mean the whole fleet path costs nothing over
  inserting the rows).
* **drain after a 24-hour outage**: one busy cabinet with 3,000 doses queued in its own SQLite store (appended
  through its ``Ledger``), then its real ``Forwarder`` (heartbeat 1 s, anchor every 60 s) and one ``CentralWorker``
  started: seconds until the central's head is the cabinet's 3,000th entry (same hash), and entries/s.
* **scale model**: NOT 10,000 live cabinets; a model from measured unit costs. In a separate (spawned) process, so
  its memory figure is not blurred by what ran before: 10,000 cabinets registered, one signed heartbeat from each
  (cold: the worker has not yet looked up their keys), then 20,000 more (warm), each round timed from its first
  publish until the worker counted them all (``stats.heartbeats``) and ``fleet_cabinets`` shows every one recorded
  (the worker's heartbeat flush is set to 0.05 s for this, instead of 1 s, so the timing is not mostly the flush
  timer). Then one entry from each of the 10,000 cabinets, published at once with the worker running (its key
  cache warm from the heartbeats): batches of up to 500 distinct cabinets, one entry each, as 10,000 cabinets at
  0.02 dispenses/s produce them (their 200 entries/s would come in smaller batches still). heartbeat_cost = the
  warm round's seconds / its heartbeats.
  N_max = 1 / (0.02 × entry_cost + (1/30) × heartbeat_cost), printed three times: with entry_cost = 1 / the
  online 1-worker throughput (as specified; that rate is the paced offer, so this cost is an upper bound), with
  1 / the 1-worker backlog drain rate (capacity, 50 cabinets, ~10 entries per cabinet per batch), and with the
  sparse-batch cost above (the one that matches 10,000 cabinets). Two more N_max rows take the sparse cost and add
  what the model leaves out: the ``fleet.anchored`` entries each Forwarder appends to its own chain and forwards
  (at most one per ``anchor_interval_s`` = 60 s by default, ~0.013/s at 0.02 doses/s), with heartbeats every 30 s
  and every 5 s (the Forwarder's default ``heartbeat_s``). Memory ("throughput/s" column): VmRSS of that
  process before and after registering the 10,000 cabinets and hearing one heartbeat from each, per 1,000
  cabinets. The costs are wall-clock seconds of one process on this machine, with PostgreSQL and NATS sharing its
  cores; nothing here runs 10,000 cabinets' forwarders.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import nats
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.table import Table

from bench.ledger import postgres_url
from controller.domain.chain import GENESIS_HASH, ChainEntry, entry_hash
from controller.domain.clock import SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.fleet import link as links
from controller.fleet import protocol as p
from controller.fleet.central_worker import CentralWorker, WorkerConfig, WorkerStats
from controller.fleet.forwarder import Forwarder, ForwarderConfig
from controller.fleet.nats_server import NatsServer
from controller.store import schema as cabinet_schema
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.central import tables as t
from controller.store.database import Database
from controller.store.ledger import Ledger, canonical_body

CABINETS = 50
ENTRIES = 20_000
RATE = 1_500.0  # entries/s offered by the paced publisher
POLL_S = 0.02
RAW_BATCH = 500
OUTAGE_ENTRIES = 3_000
SCALE_CABINETS = 10_000
HEARTBEATS = 20_000
DISPENSES_PER_S = 0.02  # per cabinet
# What the cabinet's inventory store adds to a stock entry: the central's stock view is updated from it.
STOCK_DETAILS = {"lot_expiry": "2028-11-30"}
HEARTBEAT_PERIOD_S = 30.0
TARGET_RATE = 1_000.0
TARGET_P99_S = 2.0
TARGET_CABINETS = 10_000
TIMEOUT_S = 120.0


# --- NATS and PostgreSQL for the run -----------------------------------------------------------------------------


class Schemas:
    """Fresh ``bench_fleet_<random>`` schemas on one PostgreSQL database, each migrated; all dropped by
    ``close()``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.names: list[str] = []
        self.admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")

    def fresh_url(self) -> str:
        name = f"bench_fleet_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.names.append(name)
        url = sa.make_url(self.base_url).update_query_dict({"options": f"-csearch_path={name}"})
        db = Database.open(url.render_as_string(hide_password=False))
        try:
            central_schema.upgrade(db)
        finally:
            db.dispose()
        return url.render_as_string(hide_password=False)

    def fresh(self) -> Database:
        return Database.open(self.fresh_url())

    def close(self) -> None:
        with self.admin.connect() as connection:
            for name in self.names:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.admin.dispose()


async def reset_streams(nats_url: str) -> None:
    """Delete the fleet's streams and buckets (and so the durable consumer) between scenarios."""
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        for stream in (p.LEDGER_STREAM, p.DEAD_LETTER_STREAM):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
        for bucket in (p.HEADS_BUCKET, p.USERS_BUCKET):
            with contextlib.suppress(NotFoundError):
                await js.delete_key_value(bucket)
    finally:
        await client.close()


# --- signed chains -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as a cabinet's forwarder publishes it."""

    cabinet_id: str
    seq: int
    subject: str
    payload: bytes
    headers: dict[str, str]


def body(cabinet_id: str, seq: int, at: datetime) -> str:
    """A dose's entry body exactly as the cabinet's ledger seals it."""
    record = LedgerRecord(
        EventType.DOSE_REMOVED,
        actor_id="nurse1",
        patient_id=f"MRN{seq % 97:06d}",
        item_id="morphine-2mg",
        pocket_id=f"D1-P{seq % 8 + 1:02d}",
        lot_number="MO2811A",
        quantity_change=-1,
        details=STOCK_DETAILS | {"lot_quantity_after": 100_000 - seq},
    )
    return canonical_body(record, cabinet_id=cabinet_id, seq=seq, recorded_at=at, is_simulator=True)


def signed_chain(cabinet_id: str, key: Ed25519PrivateKey, length: int, start: datetime) -> list[Outgoing]:
    out: list[Outgoing] = []
    prev = GENESIS_HASH
    subject = p.ledger_subject(cabinet_id)
    for seq in range(1, length + 1):
        text = body(cabinet_id, seq, start + timedelta(milliseconds=seq))
        digest = entry_hash(prev, text)
        payload = p.encode_entry(ChainEntry(cabinet_id, seq, prev, digest, text))
        headers = {p.MSG_ID_HEADER: p.msg_id(cabinet_id, seq), p.SIGNATURE_HEADER: p.sign(key, payload)}
        out.append(Outgoing(cabinet_id, seq, subject, payload, headers))
        prev = digest
    return out


@dataclass(frozen=True)
class Fleet:
    """Cabinets, their keys and their entries in publishing order (round robin, each chain in seq order)."""

    keys: dict[str, Ed25519PrivateKey]
    messages: list[Outgoing]
    length: int  # entries per cabinet
    order: dict[str, int]  # cabinet -> its place in each round

    def index(self, cabinet_id: str, seq: int) -> int:
        return (seq - 1) * len(self.keys) + self.order[cabinet_id]


def build_fleet(cabinets: int, entries: int) -> Fleet:
    length = entries // cabinets
    start = datetime.now(UTC) - timedelta(hours=1)
    keys = {f"BENCH-{i:03d}": p.new_signing_key() for i in range(cabinets)}
    chains = [signed_chain(cabinet_id, key, length, start) for cabinet_id, key in keys.items()]
    messages = [chain[i] for i in range(length) for chain in chains]
    return Fleet(keys, messages, length, {cabinet_id: i for i, cabinet_id in enumerate(keys)})


def register(db: Database, keys: dict[str, Ed25519PrivateKey]) -> None:
    now = SystemClock().now()
    with db.writer.begin() as connection:
        for cabinet_id, key in keys.items():
            central.register_cabinet(
                connection, cabinet_id, name=cabinet_id, care_area="BENCH", public_key=p.public_key_text(key), now=now
            )


def read_heads(db: Database) -> dict[str, int]:
    with db.reader.connect() as connection:
        rows = connection.execute(sa.select(t.heads.c.cabinet_id, t.heads.c.seq)).all()
    return {str(r.cabinet_id): int(r.seq) for r in rows}


def ledger_rows(db: Database) -> int:
    with db.reader.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(t.ledger)).scalar_one())


async def until(check: Callable[[], bool], *, what: str, timeout: float = TIMEOUT_S, every: float = POLL_S) -> float:
    """Poll ``check`` (in a thread) until it holds; returns the perf_counter time the holding check returned."""
    deadline = time.perf_counter() + timeout
    while True:
        holds = await asyncio.to_thread(check)
        now = time.perf_counter()
        if holds:
            return now
        if now > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(every)


# --- rows 1 and 2: ingest ------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    what: str
    count: int
    seconds: float
    latencies: list[float] | None = None
    target: str = ""
    ok: bool | None = None
    n_text: str | None = None
    rate_text: str | None = None
    comparable: bool = True  # whether "ratio to raw" applies

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def summarise(stats: Sequence[WorkerStats]) -> str:
    applied = sum(s.applied for s in stats)
    batches = sum(s.batches for s in stats)
    errors = {s.last_error for s in stats if s.last_error}
    return (
        f"applied {applied:,}, held {sum(s.held for s in stats):,}, duplicates {sum(s.duplicates for s in stats):,},"
        f" refused {sum(s.refused for s in stats)}, dead letters {sum(s.dead_letters for s in stats)},"
        f" db retries {sum(s.db_retries for s in stats)}, batches {batches:,}"
        f" (mean {applied / max(batches, 1):.0f} entries)" + (f", last error {errors}" if errors else "")
    )


async def _publish_all(js: JetStreamContext, messages: Sequence[Outgoing], sent_at: list[float]) -> None:
    pending = []
    for i, m in enumerate(messages):
        sent_at[i] = time.perf_counter()
        pending.append(await js.publish_async(m.subject, m.payload, headers=m.headers))
    await asyncio.gather(*pending)


async def _publish_paced(js: JetStreamContext, messages: Sequence[Outgoing], sent_at: list[float], rate: float) -> None:
    pending = []
    started = time.perf_counter()
    i = 0
    while i < len(messages):
        due = min(len(messages), int((time.perf_counter() - started) * rate) + 1)
        while i < due:
            m = messages[i]
            sent_at[i] = time.perf_counter()
            pending.append(await js.publish_async(m.subject, m.payload, headers=m.headers))
            i += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*pending)


async def watch_heads(db: Database, fleet: Fleet, committed: list[float]) -> float:
    """Poll ``fleet_heads`` every ``POLL_S``, stamping into ``committed`` when each entry's cabinet head first
    passes its seq; returns the time every head is at its last seq."""
    seen = dict.fromkeys(fleet.keys, 0)
    deadline = time.perf_counter() + TIMEOUT_S
    while True:
        heads = await asyncio.to_thread(read_heads, db)
        now = time.perf_counter()
        for cabinet_id, seq in heads.items():
            if cabinet_id in seen and seq > seen[cabinet_id]:
                for s in range(seen[cabinet_id] + 1, seq + 1):
                    committed[fleet.index(cabinet_id, s)] = now
                seen[cabinet_id] = seq
        if all(seq >= fleet.length for seq in seen.values()):
            return now
        if now > deadline:
            raise TimeoutError(f"the central did not catch up within {TIMEOUT_S:.0f} s: {sum(seen.values())} applied")
        await asyncio.sleep(POLL_S)


async def ingest(
    db: Database, nats_url: str, fleet: Fleet, *, workers: int, rate: float | None, console: Console
) -> tuple[float, list[float]]:
    """Publish the fleet's entries (paced at ``rate`` with the workers running, or all before they start when
    ``rate`` is None); returns the seconds until every head is at its last seq and the per-entry latencies."""
    n = len(fleet.messages)
    sent_at, committed = [0.0] * n, [0.0] * n
    client = await nats.connect(nats_url, name="bench-publisher")
    js = client.jetstream(timeout=10)
    await links.declare_streams(js)
    stop = asyncio.Event()
    pool = [CentralWorker(db, nats_url, SystemClock(), name=f"bench-w{i}") for i in range(workers)]
    tasks: list[asyncio.Task[None]] = []
    try:
        if rate is None:
            await _publish_all(js, fleet.messages, sent_at)
            watcher = asyncio.create_task(watch_heads(db, fleet, committed))
            started = time.perf_counter()
            tasks = [asyncio.create_task(w.run(stop)) for w in pool]
        else:
            tasks = [asyncio.create_task(w.run(stop)) for w in pool]
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in pool)), 30)
            watcher = asyncio.create_task(watch_heads(db, fleet, committed))
            started = time.perf_counter()
            await _publish_paced(js, fleet.messages, sent_at, rate)
            span = sent_at[-1] - sent_at[0]
            console.print(f"  offered {n / span:,.0f} entries/s over {span:.1f} s")
        finished = await watcher
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    console.print("  " + summarise([w.stats for w in pool]))
    stored = await asyncio.to_thread(ledger_rows, db)
    if stored != n or sum(w.stats.applied for w in pool) != n:
        console.print(f"  [red]PROBLEM: {stored:,} rows stored, expected {n:,}[/red]")
    return finished - started, [c - s for c, s in zip(committed, sent_at, strict=True)]


# --- row 3: raw --------------------------------------------------------------------------------------------------


def raw_rows(fleet: Fleet) -> list[dict[str, Any]]:
    now = SystemClock().now()
    out = []
    for m in fleet.messages:
        entry = p.decode_entry(m.payload, subject=m.subject)
        out.append(central._row(entry, json.loads(entry.body), now))
    return out


def chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def raw_executemany(db: Database, rows: list[dict[str, Any]]) -> float:
    statement = sa.insert(t.ledger)
    started = time.perf_counter()
    for batch in chunks(rows, RAW_BATCH):
        with db.writer.begin() as connection:
            connection.execute(statement, batch)
    seconds = time.perf_counter() - started
    assert ledger_rows(db) == len(rows)
    return seconds


def raw_copy(db: Database, rows: list[dict[str, Any]]) -> float:
    columns = list(rows[0])
    sql = f"COPY fleet_ledger ({', '.join(columns)}) FROM STDIN"
    started = time.perf_counter()
    for batch in chunks(rows, RAW_BATCH):
        with db.writer.begin() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in batch:
                    copy.write_row([row[c] for c in columns])
    seconds = time.perf_counter() - started
    assert ledger_rows(db) == len(rows)
    return seconds


# --- row 4: drain after an outage ----------------------------------------------------------------------------------


def queue_doses(db: Database, ledger: Ledger, count: int, per_transaction: int = 100) -> str:
    """Append ``count`` doses to the cabinet's own ledger; returns the hash of the last."""
    last = ""
    for start in range(0, count, per_transaction):
        with db.write() as session:
            for i in range(start, min(count, start + per_transaction)):
                sealed = ledger.append(
                    session,
                    LedgerRecord(
                        EventType.DOSE_REMOVED,
                        actor_id=f"NURSE{i % 7}",
                        patient_id=f"MRN{i % 31:06d}",
                        item_id="morphine-2mg",
                        pocket_id="D1-P1",
                        lot_number="MO2811A",
                        quantity_change=-1,
                        details=STOCK_DETAILS | {"lot_quantity_after": 100_000 - i},
                    ),
                )
                last = sealed.hash
    return last


def central_hash_at(db: Database, cabinet_id: str, seq: int) -> str | None:
    with db.reader.connect() as connection:
        value = connection.execute(
            sa.select(t.ledger.c.hash).where(t.ledger.c.cabinet_id == cabinet_id, t.ledger.c.seq == seq)
        ).scalar()
    return None if value is None else str(value)


async def outage_drain(db: Database, nats_url: str, folder: Path, console: Console) -> float:
    cabinet_id = "BENCH-OUTAGE"
    cabinet_db = Database.open(f"sqlite:///{folder / 'outage-cabinet.db'}", create=True)
    cabinet_schema.upgrade(cabinet_db)
    ledger = Ledger(cabinet_id, SystemClock(), is_simulator=True)
    key = p.new_signing_key()
    register(db, {cabinet_id: key})
    last_hash = await asyncio.to_thread(queue_doses, cabinet_db, ledger, OUTAGE_ENTRIES)
    stop_central, stop_cabinet = asyncio.Event(), asyncio.Event()
    worker = CentralWorker(db, nats_url, SystemClock(), name="bench-central")
    forwarder = Forwarder(
        cabinet_db, ledger, key, nats_url, SystemClock(), config=ForwarderConfig(heartbeat_s=1, anchor_interval_s=60)
    )
    central_task = asyncio.create_task(worker.run(stop_central))
    cabinet_task: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(worker.ready.wait(), 30)
        started = time.perf_counter()
        cabinet_task = asyncio.create_task(forwarder.run(stop_cabinet))
        caught_up = await until(
            lambda: read_heads(db).get(cabinet_id, 0) >= OUTAGE_ENTRIES, what="the outage cabinet's drain"
        )
    finally:
        stop_cabinet.set()
        if cabinet_task is not None:
            await asyncio.gather(cabinet_task, return_exceptions=True)
        stop_central.set()
        await asyncio.gather(central_task, return_exceptions=True)
        cabinet_db.dispose()
    console.print("  " + summarise([worker.stats]) + f"; forwarder halted: {forwarder.status.halted}")
    if await asyncio.to_thread(central_hash_at, db, cabinet_id, OUTAGE_ENTRIES) != last_hash:
        console.print("  [red]PROBLEM: the central's entry 3,000 is not the cabinet's[/red]")
    return caught_up - started


# --- row 5: the scale model's unit costs (in a spawned process) -------------------------------------------------


@dataclass(frozen=True)
class ScaleResult:
    cabinets: int
    register_s: float
    cold_beats: int
    cold_s: float
    warm_beats: int
    warm_s: float
    sparse_entries: int
    sparse_s: float
    rss_before_mb: float
    rss_after_mb: float
    summary: str


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def scale_probe(db_url: str, nats_url: str, cabinets: int, heartbeats: int) -> ScaleResult:
    """Run in a fresh process: the heartbeat and sparse-entry costs and the memory of ``cabinets`` cabinets."""
    return asyncio.run(_scale(db_url, nats_url, cabinets, heartbeats))


def _beats(keys: dict[str, Ed25519PrivateKey], head_seq: int) -> list[Outgoing]:
    now = SystemClock().now()
    out = []
    for cabinet_id, key in keys.items():
        # Nothing published yet, as the central holds nothing of these cabinets: a beat claiming more published than
        # the central's head would be a lost tail, and each would be asked to publish again.
        payload = p.encode_heartbeat(p.Heartbeat(cabinet_id, now, head_seq, 0))
        headers = {p.SIGNATURE_HEADER: p.sign(key, payload)}
        out.append(Outgoing(cabinet_id, head_seq, p.heartbeat_subject(cabinet_id), payload, headers))
    return out


def _reported(db: Database, head_seq: int) -> int:
    with db.reader.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).select_from(t.cabinets).where(t.cabinets.c.reported_head_seq == head_seq)
            ).scalar_one()
        )


def _heads_at(db: Database, seq: int) -> int:
    with db.reader.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(t.heads).where(t.heads.c.seq == seq)).scalar_one()
        )


async def _scale(db_url: str, nats_url: str, cabinets: int, heartbeats: int) -> ScaleResult:
    db = Database.open(db_url)
    keys = {f"SCALE-{i:05d}": p.new_signing_key() for i in range(cabinets)}
    cold = _beats(keys, 1)
    rounds = max(1, heartbeats // cabinets)
    warm = [beat for r in range(rounds) for beat in _beats(keys, 2 + r)]
    start = datetime.now(UTC) - timedelta(minutes=10)
    sparse = [signed_chain(cabinet_id, key, 1, start)[0] for cabinet_id, key in keys.items()]
    stop = asyncio.Event()
    worker = CentralWorker(db, nats_url, SystemClock(), name="bench-scale", config=WorkerConfig(heartbeat_flush_s=0.05))
    task = asyncio.create_task(worker.run(stop))
    client = await nats.connect(nats_url, name="bench-cabinets")
    js = client.jetstream(timeout=10)

    async def send(beats: list[Outgoing], what: str, head_seq: int) -> float:
        expected = worker.stats.heartbeats + len(beats)
        started = time.perf_counter()
        for i, beat in enumerate(beats):
            await client.publish(beat.subject, beat.payload, headers=beat.headers)
            if i % 1_000 == 999:
                await client.flush()
        await client.flush()
        await until(lambda: worker.stats.heartbeats >= expected, what=f"{what} heartbeats counted", every=0.005)
        recorded = await until(lambda: _reported(db, head_seq) == cabinets, what=f"{what} heartbeats recorded")
        return recorded - started

    try:
        await asyncio.wait_for(worker.ready.wait(), 30)
        gc.collect()
        before = rss_mb()
        started = time.perf_counter()
        await asyncio.to_thread(register, db, keys)
        register_s = time.perf_counter() - started
        cold_s = await send(cold, "cold", 1)
        gc.collect()
        after = rss_mb()
        warm_s = await send(warm, "warm", 1 + rounds)
        started = time.perf_counter()
        pending = [await js.publish_async(m.subject, m.payload, headers=m.headers) for m in sparse]
        await asyncio.gather(*pending)
        caught_up = await until(lambda: _heads_at(db, 1) == cabinets, what="one entry from every cabinet")
        sparse_s = caught_up - started
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        db.dispose()
    return ScaleResult(
        cabinets, register_s, len(cold), cold_s, len(warm), warm_s, len(sparse), sparse_s, before, after,
        summarise([worker.stats]),
    )  # fmt: skip


def n_max(
    entry_cost_s: float, heartbeat_cost_s: float, *, entries_per_s: float = DISPENSES_PER_S,
    heartbeat_period_s: float = HEARTBEAT_PERIOD_S,
) -> float:  # fmt: skip
    return 1.0 / (entries_per_s * entry_cost_s + heartbeat_cost_s / heartbeat_period_s)


def anchors_per_s(dispenses_per_s: float, interval_s: float) -> float:
    """The rate of the ``fleet.anchored`` entries a forwarder adds to its own chain (and so forwards): after an
    anchor, the next comes at ``interval_s`` if a dose moved the head meanwhile, else at the next dose (Poisson
    doses; the few seconds of the head watch's poll are left out)."""
    return 1.0 / (interval_s + math.exp(-dispenses_per_s * interval_s) / dispenses_per_s)


# --- the run -------------------------------------------------------------------------------------------------------


def run(console: Console) -> Table:
    pg = postgres_url()
    if pg is None:
        console.print("fleet: PostgreSQL not reachable: skipping")
        return table([], None)
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        console.print("fleet: nats-server not installed: skipping")
        return table([], None)
    began = time.perf_counter()
    schemas = Schemas(pg)
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="adc-bench-fleet-") as folder:
        server = NatsServer(Path(folder) / "nats")
        server.start()
        try:
            rows, raw_rate = _measure(console, schemas, server, Path(folder))
        finally:
            server.stop()
            schemas.close()
    console.print(f"fleet: done in {time.perf_counter() - began:.0f} s")
    return table(rows, raw_rate)


def _measure(console: Console, schemas: Schemas, server: NatsServer, folder: Path) -> tuple[list[Measurement], float]:
    console.print(f"fleet: signing {ENTRIES:,} entries of {CABINETS} cabinets …")
    fleet = build_fleet(CABINETS, ENTRIES)
    n = len(fleet.messages)
    rows: list[Measurement] = []
    target = f"≥{TARGET_RATE:,.0f}/s, p99<{TARGET_P99_S:.0f} s"
    online: dict[int, float] = {}
    for workers in (1, 3):
        console.print(f"fleet: online ingest at {RATE:,.0f}/s, {workers} worker(s) …")
        db = schemas.fresh()
        register(db, fleet.keys)
        seconds, latencies = asyncio.run(ingest(db, server.url, fleet, workers=workers, rate=RATE, console=console))
        db.dispose()
        asyncio.run(reset_streams(server.url))
        m = Measurement(
            f"1. online @{RATE:,.0f}/s, {workers} worker{'s' if workers > 1 else ''}", n, seconds, latencies, target
        )
        m.ok = m.rate >= TARGET_RATE and quantiles(latencies, n=100)[98] < TARGET_P99_S
        online[workers] = m.rate
        rows.append(m)
    backlog: dict[int, float] = {}
    for workers in (1, 3):
        console.print(f"fleet: backlog of {n:,} drained by {workers} worker(s) …")
        db = schemas.fresh()
        register(db, fleet.keys)
        seconds, _ = asyncio.run(ingest(db, server.url, fleet, workers=workers, rate=None, console=console))
        db.dispose()
        asyncio.run(reset_streams(server.url))
        backlog[workers] = n / seconds
        rows.append(Measurement(f"2. backlog drain, {workers} worker{'s' if workers > 1 else ''}", n, seconds))

    console.print(f"fleet: raw inserts of the same {n:,} rows …")
    raw = raw_rows(fleet)
    timings: dict[str, list[float]] = {"executemany": [], "copy": []}
    for _ in range(3):  # median of three: a 2-core machine is noisy and these runs are short
        for name, insert in (("executemany", raw_executemany), ("copy", raw_copy)):
            db = schemas.fresh()
            timings[name].append(insert(db, raw))
            db.dispose()
    executemany_s, copy_s = median(timings["executemany"]), median(timings["copy"])
    rows.append(Measurement(f"3. raw executemany, {RAW_BATCH}/txn", n, executemany_s))
    rows.append(Measurement(f"3. raw COPY, {RAW_BATCH}/txn", n, copy_s))
    raw_rate = n / executemany_s

    console.print(f"fleet: one cabinet's {OUTAGE_ENTRIES:,} queued entries after an outage …")
    db = schemas.fresh()
    drain_s = asyncio.run(outage_drain(db, server.url, folder, console))
    db.dispose()
    asyncio.run(reset_streams(server.url))
    rows.append(
        Measurement(f"4. outage drain: caught up in {drain_s:.2f} s",
                    OUTAGE_ENTRIES, drain_s)
    )  # fmt: skip

    console.print(f"fleet: scale probe, {SCALE_CABINETS:,} cabinets in a spawned process …")
    url = schemas.fresh_url()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        scale = pool.submit(scale_probe, url, server.url, SCALE_CABINETS, HEARTBEATS).result()
    console.print(f"  registered {scale.cabinets:,} cabinets in {scale.register_s:.1f} s; {scale.summary}")
    rows.extend(model_rows(scale, online[1], backlog[1], console))
    return rows, raw_rate


def model_rows(scale: ScaleResult, online_rate: float, backlog_rate: float, console: Console) -> list[Measurement]:
    beat_cost = scale.warm_s / scale.warm_beats
    sparse_cost = scale.sparse_s / scale.sparse_entries
    goal = f"≥{TARGET_CABINETS:,} (model)"
    console.print(
        f"  model: N_max = 1 / ({DISPENSES_PER_S} × entry + beat / {HEARTBEAT_PERIOD_S:.0f}); beat"
        f" {beat_cost * 1000:.3f} ms (warm; cold {scale.cold_s / scale.cold_beats * 1000:.3f} ms); entry"
        f" {1000 / online_rate:.3f} ms (online 1w), {1000 / backlog_rate:.3f} ms (backlog 1w),"
        f" {sparse_cost * 1000:.3f} ms (sparse)"
    )
    console.print(
        f"  memory: VmRSS {scale.rss_before_mb:.1f} → {scale.rss_after_mb:.1f} MB for {scale.cabinets:,} cabinets"
    )
    rows = [
        Measurement("5. heartbeats, warm", scale.warm_beats, scale.warm_s,
                    comparable=False),
        Measurement("5. heartbeats, cold (1st each)", scale.cold_beats, scale.cold_s, comparable=False),
        Measurement(f"5. 1 entry × {scale.cabinets:,} cabinets", scale.sparse_entries,
                    scale.sparse_s),
    ]  # fmt: skip
    for label, entry_cost in (
        ("online 1w", 1 / online_rate),
        ("backlog 1w", 1 / backlog_rate),
        ("sparse", sparse_cost),
    ):
        cabinets = n_max(entry_cost, beat_cost)
        rows.append(
            Measurement(
                f"5. N_max, entry cost: {label}",
                0, 1.0, target=goal, ok=cabinets >= TARGET_CABINETS, n_text=f"{cabinets:,.0f}", rate_text="—",
                comparable=False,
            )
        )  # fmt: skip
    anchors = anchors_per_s(DISPENSES_PER_S, ForwarderConfig().anchor_interval_s)
    entries = DISPENSES_PER_S + anchors
    for label, period in (("", HEARTBEAT_PERIOD_S), (", beat 5 s", ForwarderConfig().heartbeat_s)):
        cabinets = n_max(sparse_cost, beat_cost, entries_per_s=entries, heartbeat_period_s=period)
        rows.append(
            Measurement(
                f"5. N_max, sparse + anchors{label}", 0, 1.0, target=goal, ok=cabinets >= TARGET_CABINETS,
                n_text=f"{cabinets:,.0f}", rate_text="—", comparable=False,
            )
        )  # fmt: skip
    console.print(
        f"  anchors: a forwarder with the default anchor_interval_s={ForwarderConfig().anchor_interval_s:.0f} adds"
        f" ~{anchors:.4f} fleet.anchored entries/s to {DISPENSES_PER_S} doses/s ({entries:.4f} entries/s); its"
        f" default heartbeat is every {ForwarderConfig().heartbeat_s:.0f} s, not {HEARTBEAT_PERIOD_S:.0f} s"
    )
    per_thousand = (scale.rss_after_mb - scale.rss_before_mb) / (scale.cabinets / 1000)
    rows.append(
        Measurement(
            "5. RSS per 1,000 cabinets",
            scale.cabinets, 1.0, n_text=f"{scale.cabinets:,}", rate_text=f"{per_thousand:.2f} MB", comparable=False,
        )
    )  # fmt: skip
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(rows: list[Measurement], raw_rate: float | None) -> Table:
    result = Table(title="Fleet: cabinet ledgers over NATS JetStream into the central's PostgreSQL")
    for column in ("what", "n", "throughput/s", "p50", "p99", "ratio to raw", "target"):
        result.add_column(column, justify="left" if column in ("what", "target") else "right")
    for row in rows:
        cuts = quantiles(row.latencies, n=100) if row.latencies else None
        ratio = f"{row.rate / raw_rate:.2f}" if raw_rate and row.comparable else "—"
        verdict = "" if row.ok is None else (" ok" if row.ok else " MISSED")
        result.add_row(
            row.what,
            row.n_text or f"{row.count:,}",
            row.rate_text or f"{row.rate:,.0f}",
            _ms(cuts[49]) if cuts else "—",
            _ms(cuts[98]) if cuts else "—",
            ratio,
            row.target + verdict,
        )
    return result


if __name__ == "__main__":
    Console(width=140).print(run(Console(width=140)))
