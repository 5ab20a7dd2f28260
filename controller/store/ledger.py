"""The append-only, hash-chained ledger: sealing records into entries and verifying the chain.

Each entry's ``body`` is the canonical JSON of the record (sorted keys, no spaces, UTF-8) including its
per-cabinet sequence number; its ``hash`` is SHA-256 over the previous entry's hash, a newline and the body.
Appends lock the cabinet's head row, so sequence numbers have no gaps and the chain never forks, whichever
process or connection writes. No code here updates or deletes an entry; the migrations add database triggers
that refuse UPDATE and DELETE on the table.

Observers (``Ledger(observers=...)``) are called inside ``append``, in the caller's transaction, with the sealed
entry: what they write commits or rolls back with the entry (the HL7 outbox is one). The store knows nothing of
what they do; one that raises makes the append fail.
"""

from __future__ import annotations

import gc
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy import bindparam as sa_bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controller.domain.chain import GENESIS_HASH, entry_hash
from controller.domain.clock import Clock
from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import SoftwareError
from controller.store.models import Base, LedgerEntryRow, LedgerHeadRow

# Appends use Core statements on the tables and the session's connection: the ORM adds nothing here but time.
ENTRIES = Base.metadata.tables[LedgerEntryRow.__tablename__]
HEADS = Base.metadata.tables[LedgerHeadRow.__tablename__]
_INSERT_ENTRY = insert(ENTRIES)
_ADVANCE_HEAD = update(HEADS).where(HEADS.c.cabinet_id == sa_bindparam("cabinet"))
_READ_HEAD = select(HEADS.c.last_seq, HEADS.c.last_hash).where(HEADS.c.cabinet_id == sa_bindparam("cabinet"))

BODY_FORMAT_VERSION = 1

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def format_timestamp(moment: datetime) -> str:
    """UTC with microseconds and a ``Z``: fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise SoftwareError("ledger.invalid_entry", "ledger timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_json(value: Any, where: str) -> None:
    """Only values whose JSON text is stable across databases: no floats, no NUL characters."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise SoftwareError("ledger.invalid_entry", f"{where} contains a NUL character")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SoftwareError("ledger.invalid_entry", f"{where} has a non-text key {key!r}")
            _check_json(key, where)
            _check_json(item, f"{where}.{key}")
        return
    raise SoftwareError(
        "ledger.invalid_entry",
        f"{where} holds a {type(value).__name__}; record decimals and times as text, counts as integers",
    )


def canonical_body(
    record: LedgerRecord, *, cabinet_id: str, seq: int, recorded_at: datetime, is_simulator: bool
) -> str:
    if record.event_type.moves_stock and (record.quantity_change is None or record.pocket_id is None):
        raise SoftwareError(
            "ledger.invalid_entry", f"{record.event_type.value} must name the pocket and the quantity change"
        )
    document: dict[str, Any] = {
        "v": BODY_FORMAT_VERSION,
        "cabinet_id": cabinet_id,
        "seq": seq,
        "recorded_at": format_timestamp(recorded_at),
        "event_type": EventType(record.event_type).value,
        "actor_id": record.actor_id,
        "witness_id": record.witness_id,
        "patient_id": record.patient_id,
        "order_id": record.order_id,
        "item_id": record.item_id,
        "pocket_id": record.pocket_id,
        "lot_number": record.lot_number,
        "quantity_expected": record.quantity_expected,
        "quantity_actual": record.quantity_actual,
        "quantity_change": record.quantity_change,
        "reason_code": record.reason_code,
        "note": record.note,
        "device_state": dict(record.device_state),
        "details": dict(record.details),
        "is_simulator": is_simulator,
    }
    _check_json(document, "entry")
    return _encode(document)


@dataclass(frozen=True, slots=True)
class SealedEntry:
    cabinet_id: str
    seq: int
    recorded_at: datetime
    body: str
    prev_hash: str
    hash: str


# Called inside ``Ledger.append`` with the session of the append's transaction, the sealed entry and its record.
LedgerObserver = Callable[[Session, SealedEntry, LedgerRecord], None]


class Ledger:
    """Appends records for one cabinet. ``is_simulator`` comes from the devices the cabinet runs against, so a
    simulated dose can never be mistaken for a real one."""

    def __init__(
        self, cabinet_id: str, clock: Clock, *, is_simulator: bool, observers: Sequence[LedgerObserver] = ()
    ) -> None:
        self.cabinet_id = cabinet_id
        self.clock = clock
        self.is_simulator = is_simulator
        self.observers = tuple(observers)

    def append(self, session: Session, record: LedgerRecord) -> SealedEntry:
        """Seal ``record`` into the chain inside the caller's transaction (it commits or rolls back with it)."""
        connection = session.connection()
        prev_seq, prev_hash = _lock_head(connection, self.cabinet_id)
        seq = prev_seq + 1
        recorded_at = self.clock.now()
        body = canonical_body(
            record,
            cabinet_id=self.cabinet_id,
            seq=seq,
            recorded_at=recorded_at,
            is_simulator=self.is_simulator,
        )
        digest = entry_hash(prev_hash, body)
        connection.execute(_INSERT_ENTRY, {"body": body, "prev_hash": prev_hash, "hash": digest})
        connection.execute(_ADVANCE_HEAD, {"cabinet": self.cabinet_id, "last_seq": seq, "last_hash": digest})
        sealed = SealedEntry(self.cabinet_id, seq, recorded_at, body, prev_hash, digest)
        for observer in self.observers:
            observer(session, sealed, record)
        return sealed


def _lock_head(connection: Connection, cabinet_id: str) -> tuple[int, str]:
    """Lock and read the cabinet's head row, creating it on the first append.

    On PostgreSQL ``FOR UPDATE`` serialises appenders; on SQLite the writer's ``BEGIN IMMEDIATE`` already holds
    the database write lock.
    """
    row = connection.execute(_READ_HEAD.with_for_update(), {"cabinet": cabinet_id}).first()
    if row is None:
        builder = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            builder(HEADS)
            .values(cabinet_id=cabinet_id, last_seq=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["cabinet_id"])
        )
        row = connection.execute(_READ_HEAD.with_for_update(), {"cabinet": cabinet_id}).one()
    return int(row.last_seq), str(row.last_hash)


# --- verification -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainProblem:
    cabinet_id: str
    seq: int  # the first bad entry (or the first missing sequence number)
    kind: str  # "altered", "missing", "out_of_chain", "truncated", "unreadable"
    detail: str

    def __str__(self) -> str:
        return f"cabinet {self.cabinet_id}, entry #{self.seq}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries_checked: int
    cabinets: tuple[str, ...]
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


ProgressCallback = Callable[[int], None]


def count_entries(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(LedgerEntryRow)).scalar_one())


def verify_chain(
    connection: Connection, *, progress: ProgressCallback | None = None, progress_every: int = 10_000
) -> VerifyReport:
    """Recompute every cabinet's chain and name the first bad entry of each.

    Catches an edited entry (its hash no longer matches its body), a deleted one (a gap in the sequence),
    entries moved or inserted (the link to the previous hash breaks) and entries cut from the end (the head row
    remembers more than the table holds).
    """
    heads = {
        str(r.cabinet_id): (int(r.last_seq), str(r.last_hash))
        for r in connection.execute(select(LedgerHeadRow.cabinet_id, LedgerHeadRow.last_seq, LedgerHeadRow.last_hash))
    }
    cabinets = sorted(
        set(heads) | {str(c) for (c,) in connection.execute(select(LedgerEntryRow.cabinet_id).distinct())}
    )
    problems: list[ChainProblem] = []
    checked = 0
    with _cyclic_gc_paused():
        for cabinet_id in cabinets:
            problem, seen, last_seq, last_hash = _verify_cabinet(
                connection, cabinet_id, checked, progress, progress_every
            )
            checked += seen
            if problem is None:
                problem = _check_head(cabinet_id, heads.get(cabinet_id), last_seq, last_hash)
            if problem is not None:
                problems.append(problem)
    if progress is not None:
        progress(checked)
    return VerifyReport(entries_checked=checked, cabinets=tuple(cabinets), problems=tuple(problems))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Verification allocates millions of short-lived tuples and strings, all freed by reference counting; the
    cyclic collector would only rescan them (a third of the run time on long chains)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_CHAIN_QUERY = "SELECT seq, prev_hash, hash, body FROM ledger_entries WHERE cabinet_id = {param} ORDER BY seq"


def _stream_entries(
    connection: Connection, cabinet_id: str, batch: int = 20_000
) -> Iterator[tuple[int, str, str, str]]:
    """Rows in sequence order straight from the driver's cursor: verification reads every entry, and building
    SQLAlchemy rows for each would cost more than hashing them. PostgreSQL streams through a server-side cursor."""
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name=f"ledger_verify_{uuid.uuid4().hex}")  # type: ignore[union-attr]
        query = _CHAIN_QUERY.format(param="%s")
    else:
        cursor = raw.cursor()  # type: ignore[union-attr]
        query = _CHAIN_QUERY.format(param="?")
    try:
        cursor.execute(query, (cabinet_id,))
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


def _verify_cabinet(
    connection: Connection,
    cabinet_id: str,
    checked_before: int,
    progress: ProgressCallback | None,
    progress_every: int,
) -> tuple[ChainProblem | None, int, int, str]:
    sha256 = hashlib.sha256
    expected_seq = 1
    prev_hash = GENESIS_HASH
    seen = 0
    for seq, row_prev, row_hash, body in _stream_entries(connection, cabinet_id):
        seen += 1
        if seq != expected_seq:
            return (
                ChainProblem(
                    cabinet_id,
                    expected_seq,
                    "missing",
                    f"entry #{expected_seq} is missing (deleted); the next entry present is #{seq}",
                ),
                seen,
                expected_seq - 1,
                prev_hash,
            )
        if sha256(f"{row_prev}\n{body}".encode()).hexdigest() != row_hash:
            return (
                ChainProblem(
                    cabinet_id,
                    seq,
                    "altered",
                    f"entry #{seq} was altered: its hash does not match its content",
                ),
                seen,
                seq - 1,
                prev_hash,
            )
        if row_prev != prev_hash:
            return (
                ChainProblem(
                    cabinet_id,
                    seq,
                    "out_of_chain",
                    f"entry #{seq} does not follow entry #{seq - 1} (entries inserted, reordered or replaced)",
                ),
                seen,
                seq - 1,
                prev_hash,
            )
        prev_hash = row_hash
        expected_seq += 1
        if progress is not None and seen % progress_every == 0:
            progress(checked_before + seen)
    return None, seen, expected_seq - 1, prev_hash


def _check_head(cabinet_id: str, head: tuple[int, str] | None, last_seq: int, last_hash: str) -> ChainProblem | None:
    if head is None:
        if last_seq == 0:
            return None
        return ChainProblem(cabinet_id, 1, "unreadable", "entries exist but the cabinet's ledger head is missing")
    head_seq, head_hash = head
    if head_seq > last_seq:
        return ChainProblem(
            cabinet_id,
            last_seq + 1,
            "truncated",
            f"entries #{last_seq + 1} to #{head_seq} are missing from the end of the chain",
        )
    if head_seq != last_seq or head_hash != last_hash:
        return ChainProblem(
            cabinet_id,
            min(head_seq, last_seq) or 1,
            "out_of_chain",
            f"the ledger head (entry #{head_seq}) does not match the last entry (#{last_seq})",
        )
    return None
