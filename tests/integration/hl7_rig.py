"""A listener on a real loopback socket, an MLLP client that speaks to it, and message builders.

The client is deliberately not the listener's code: it frames by hand and reads the ACK back with python-hl7,
as an interface engine would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hl7
import sqlalchemy as sa

from controller.domain.clock import Clock
from controller.integration.hl7 import MllpListener, open_listener
from controller.store.database import Database

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
DOMAIN_TABLES = ("care_areas", "patients", "encounters", "orders", "hl7_orders", "hl7_patient_merges")


@dataclass(frozen=True)
class Ack:
    text: str
    code: str  # MSA-1
    control_id: str  # MSA-2
    error: str  # ERR-3.1 (table 0357), "" when there is no ERR
    location: str  # ERR-2 as sent, "" when none
    app_code: str  # ERR-5.1, the catalogue code

    @property
    def msh(self) -> list[str]:
        return self.text.split("\r")[0].split("|")


def parse_ack(text: str) -> Ack:
    message = hl7.parse(text)
    assert str(message.segment("MSH")[9]).startswith("ACK"), text
    msa = message.segment("MSA")
    errs = message.segments("ERR") if "\rERR|" in text else []
    err = errs[0] if errs else None
    return Ack(
        text=text,
        code=str(msa[1]),
        control_id=str(msa[2]),
        error=str(err.extract_field(field_num=3, component_num=1)) if err else "",
        location=str(err[2]) if err else "",
        app_code=str(err.extract_field(field_num=5, component_num=1)) if err else "",
    )


class MllpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> MllpClient:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_ack(self, timeout: float = 10.0) -> Ack:
        async with asyncio.timeout(timeout):
            block = await self.reader.readuntil(FS + CR)
        assert block.startswith(VT), block
        return parse_ack(block[1:-2].decode("utf-8"))

    async def send(self, payload: bytes) -> Ack:
        await self.send_bytes(VT + payload + FS + CR)
        return await self.read_ack()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def listening(db: Database, clock: Clock, **options: Any) -> AsyncIterator[tuple[MllpListener, MllpClient]]:
    listener = await open_listener(db, clock, facility="CAB-T", **options)
    client = await MllpClient.connect(listener.address)
    try:
        yield listener, client
    finally:
        await client.close()
        await listener.close()


def exchange(db: Database, clock: Clock, *payloads: bytes) -> list[Ack]:
    """Send each payload on one connection to a fresh listener; the ACKs in order."""

    async def scenario() -> list[Ack]:
        async with listening(db, clock) as (_, client):
            return [await client.send(p) for p in payloads]

    return asyncio.run(_bounded(scenario()))


async def _bounded(coroutine: Any, timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        return await coroutine


# --- what the store holds ----------------------------------------------------------------------------------------


def rows(db: Database, table: str) -> list[dict[str, Any]]:
    with db.reader.connect() as connection:
        result = connection.execute(sa.text(f"SELECT * FROM {table}"))  # test helper: fixed table names
        found = [dict(r._mapping) for r in result]
    return sorted(found, key=lambda r: tuple(str(v) for v in r.values()))


def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(db, table) for table in DOMAIN_TABLES}


def archive(db: Database) -> list[dict[str, Any]]:
    with db.reader.connect() as connection:
        result = connection.execute(sa.text("SELECT * FROM hl7_inbound_messages ORDER BY id"))
        return [dict(r._mapping) for r in result]


def one(db: Database, table: str, **where: Any) -> dict[str, Any]:
    found = [r for r in rows(db, table) if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, (table, where, found)
    return found[0]


# --- messages ------------------------------------------------------------------------------------------------------


def sample(shared_external: Path, name: str) -> bytes:
    return (shared_external / "hl7" / name).read_bytes()


def segments(payload: bytes) -> list[str]:
    text = payload.decode("utf-8-sig").replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in text.split("\r") if s]


def set_field(payload: bytes, segment: str, field: int, value: str, occurrence: int = 1) -> bytes:
    """The message with one field replaced (segments joined by CR)."""
    out, seen = [], 0
    for line in segments(payload):
        if line.startswith(segment + "|"):
            seen += 1
        if seen != occurrence or not line.startswith(segment + "|"):
            out.append(line)
            continue
        parts = line.split("|")
        index = field - 1 if segment == "MSH" else field  # MSH-1 is the separator itself
        parts.extend([""] * (index + 1 - len(parts)))
        parts[index] = value
        out.append("|".join(parts))
        seen += 1  # only the chosen occurrence
    return "\r".join(out).encode("utf-8")


def adt(
    event: str, control_id: str, mrn: str, *, visit: str = "V1", location: str = "4W^401^A", extra: str = ""
) -> bytes:
    return (
        f"MSH|^~\\&|ADT|HOSP|ADC|CAB|20261125120000||ADT^{event}^ADT_A01|{control_id}|P|2.5.1\r"
        f"EVN|{event}|20261125120000\r"
        f"PID|1||{mrn}^^^HOSP^MR||Doe^Jane||19700101|F\r"
        f"PV1|1|I|{location}||||||||||||||||{visit}\r{extra}"
    ).encode()


def rde(
    control_id: str,
    order: str,
    mrn: str,
    *,
    control: str = "NW",
    give: str = "0409-1891-01^morphine 4 mg/mL^NDC",
    amount: str = "4",
    units: str = "mg",
    route: str = "IV^Intravenous^HL70162",
    tq1: str = "TQ1|1||Q4H||||||PRN",
    status: str = "",
) -> bytes:
    return (
        f"MSH|^~\\&|PHARM|HOSP|ADC|CAB|20261125120000||RDE^O11^RDE_O11|{control_id}|P|2.5.1\r"
        f"PID|1||{mrn}^^^HOSP^MR||Doe^Jane||19700101|F\r"
        f"ORC|{control}|{order}^PHARM|||{status}||||20261125120000||1234^Shah^Priya\r"
        f"RXE||{give}|{amount}||{units}|INJ^injection||||2|EA^each\r"
        f"{tq1}\rRXR|{route}\r"
    ).encode()
