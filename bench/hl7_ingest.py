"""HL7 ingest benchmark: RDE^O11 new orders in over MLLP on loopback, each acknowledged, in messages per second.

The listener runs in this process on a fresh store holding the demo formulary; a client on the same event loop
sends N RDE^O11 NW messages (distinct control ids and order numbers, one patient, a formulary NDC) one at a time
and waits for each ACK before the next, as an interface engine does. Each message is parsed, deduplicated, filed
(order, pharmacy details) and archived with its ACK in its own durable transaction (SQLite: WAL,
``synchronous=FULL``). The baseline is a bare MLLP echo server on the same asyncio socket setup and client, which
answers every frame at once with a fixed ACK: "vs echo" = our rate / the echo's rate (the share of the bare
transport's throughput kept; 1.0 would mean storing costs nothing). A second reference row times the floor the
disk sets, one durable SQLite commit per message (raw sqlite3, same pragmas) and nothing else: "vs floor" = our
rate / that rate. PostgreSQL rows are added when it answers
(``ADC_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles

from rich.console import Console
from rich.table import Table

from bench.ledger import drop_postgres_schemas, postgres_schema, postgres_url
from controller.domain.clock import FixedClock
from controller.integration.hl7 import open_listener
from controller.integration.hl7.mllp import MllpDecoder, frame
from controller.store import repositories, schema
from controller.store.database import Database
from controller.store.formulary_file import load_formulary

TARGET = 300.0  # messages/s on SQLite
ECHO_ACK = b"MSH|^~\\&|ECHO|BENCH|||20261125120000||ACK^O11^ACK|1|P|2.5.1\rMSA|AA|1\r"


def message(index: int) -> bytes:
    return (
        f"MSH|^~\\&|PHARM|HOSP|ADC|CAB|20261125120000||RDE^O11^RDE_O11|B{index}|P|2.5.1\r"
        "PID|1||MRN-BENCH^^^HOSP^MR||Doe^Jane||19700101|F\r"
        "PV1|1|I|4W^401^A||||||||||||||||V-BENCH\r"
        f"ORC|NW|RX{index}^PHARM|||||||20261125120000||1234^Shah^Priya\r"
        "RXE||0409-1891-01^morphine sulfate 4 mg/mL^NDC|4||mg|INJ^injection||||1|EA^each\r"
        "TQ1|1||Q4H||||||PRN\rRXR|IV^Intravenous^HL70162\r"
    ).encode()


@dataclass
class Measurement:
    setup: str
    count: int
    seconds: float
    latencies: list[float]
    echo_rate: float | None = None
    target: str = ""
    floor_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass(frozen=True)
class Reference:
    echo_rate: float
    floor_rate: float


async def _drive(address: tuple[str, int], count: int, first: int) -> tuple[float, list[float]]:
    reader, writer = await asyncio.open_connection(*address)
    latencies: list[float] = []
    started = time.perf_counter()
    for index in range(first, first + count):
        sent = time.perf_counter()
        writer.write(frame(message(index)))
        await writer.drain()
        block = await reader.readuntil(b"\x1c\x0d")
        if b"MSA|AA|" not in block:
            raise RuntimeError(f"message {index} was not accepted: {block!r}")
        latencies.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    return elapsed, latencies


async def _echo_server() -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MllpDecoder()
        while data := await reader.read(64 * 1024):
            for _ in decoder.feed(data):
                writer.write(frame(ECHO_ACK))
                await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def commit_floor(path: Path, count: int) -> Measurement:
    """What the disk allows: one durable SQLite commit per message (WAL, synchronous=FULL, raw sqlite3), each
    inserting the message's bytes, with no parsing and no ORM. The listener cannot beat this rate."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    latencies: list[float] = []
    started = time.perf_counter()
    for index in range(count):
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO frames (payload) VALUES (?)", (message(index),))
        connection.execute("COMMIT")
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - started
    connection.close()
    return Measurement("SQLite commit floor", count, elapsed, latencies)


def fresh_store(url: str) -> Database:
    db = Database.open(url, create=True)
    schema.upgrade(db)
    with db.write() as session:
        for entry in load_formulary():
            repositories.save_medication(session, entry.medication)
    return db


async def _ingest(db: Database, count: int, warmup: int) -> tuple[float, list[float]]:
    listener = await open_listener(db, FixedClock(datetime(2026, 11, 25, tzinfo=UTC)))
    try:
        await _drive(listener.address, warmup, 0)
        return await _drive(listener.address, count, warmup)
    finally:
        await listener.close()


async def _echo(count: int, warmup: int) -> tuple[float, list[float]]:
    server = await _echo_server()
    try:
        host, port = server.sockets[0].getsockname()[:2]
        await _drive((host, port), warmup, 0)
        return await _drive((host, port), count, warmup)
    finally:
        server.close()
        await server.wait_closed()


def measure(setup: str, url: str, count: int, *, warmup: int, reference: Reference, target: str = "") -> Measurement:
    """The listener on a fresh store at ``url``, with the reference rates its ratios are taken against."""
    db = fresh_store(url)
    try:
        seconds, latencies = asyncio.run(_ingest(db, count, warmup))
    finally:
        db.dispose()
    return Measurement(setup, count, seconds, latencies, reference.echo_rate, target, reference.floor_rate)


def run(console: Console, count: int = 2_000, warmup: int = 100) -> Table:
    console.print(f"HL7: {count} RDE^O11 over MLLP to a bare echo server …")
    echo_seconds, echo_latencies = asyncio.run(_echo(count, warmup))
    echo = Measurement("MLLP echo (bare)", count, echo_seconds, echo_latencies)
    rows = [echo]
    with tempfile.TemporaryDirectory(prefix="adc-bench-hl7-") as folder:
        floor = commit_floor(Path(folder) / "floor.db", count)
        rows.append(floor)
        reference = Reference(echo_rate=echo.rate, floor_rate=floor.rate)
        console.print(f"HL7: {count} RDE^O11 ingested on SQLite …")
        rows.append(
            measure(
                "listener, SQLite",
                f"sqlite:///{Path(folder) / 'hl7.db'}",
                count,
                warmup=warmup,
                reference=reference,
                target=">= 300/s",
            )
        )
    pg = postgres_url()
    if pg is None:
        console.print("PostgreSQL not reachable: skipping its row")
    else:
        console.print(f"HL7: {count} RDE^O11 ingested on PostgreSQL …")
        try:
            rows.append(
                measure(
                    "listener, PostgreSQL",
                    postgres_schema(pg, "adc_bench_hl7"),
                    count,
                    warmup=warmup,
                    reference=reference,
                )
            )
        finally:
            drop_postgres_schemas(pg, "adc_bench_hl7")
    return table(rows)


def table(rows: list[Measurement]) -> Table:
    result = Table(title="HL7 ingest: RDE^O11 with ACK over loopback MLLP, one at a time")
    for column in ("setup", "messages", "msg/s", "p50 ms", "p99 ms", "vs echo", "vs floor", "target"):
        result.add_column(column, justify="left" if column in ("setup", "target") else "right")
    for row in rows:
        cuts = quantiles(row.latencies, n=100)
        ratio = f"{row.rate / row.echo_rate:.3f}" if row.echo_rate else "—"
        share = f"{row.rate / row.floor_rate:.2f}" if row.floor_rate else "—"
        ok = "" if not row.target else (" ok" if row.rate >= TARGET else " MISSED")
        result.add_row(
            row.setup,
            str(row.count),
            f"{row.rate:,.0f}",
            f"{cuts[49] * 1000:.2f}",
            f"{cuts[98] * 1000:.2f}",
            ratio,
            share,
            row.target + ok,
        )
    return result
