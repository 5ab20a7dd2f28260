"""Reading one cabinet's ledger: entries by filter and sequence number, the entries after a sequence number (the
event stream follows the ledger with these), the latest entries of one event type, and the chain check.

Entries come back as stored: ``body`` is the canonical JSON the hash covers, parsed by whoever shows it. Every
query names the cabinet and orders by ``seq``, which the unique (cabinet_id, seq) index serves. Not: writing
entries (``controller.store.ledger.Ledger``), or reading other cabinets' entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from controller.store.database import Database
from controller.store.ledger import VerifyReport, format_timestamp, verify_chain
from controller.store.models import LedgerEntryRow


@dataclass(frozen=True, slots=True)
class EntryBody:
    seq: int
    body: str  # the entry's canonical JSON


@dataclass(frozen=True, slots=True)
class HashedEntry:
    seq: int
    body: str  # the entry's canonical JSON
    hash: str


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """What ``entries`` keeps: recorded in [since, until) (aware times), a user as actor or witness, an item, a
    patient, an event type. None: not filtered on."""

    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    item_id: str | None = None
    patient_id: str | None = None
    event_type: str | None = None


def entries(session: Session, cabinet_id: str, where: LedgerFilter, *, after_seq: int, limit: int) -> list[HashedEntry]:
    """Up to ``limit`` entries after ``after_seq`` that pass ``where``, in sequence order."""
    statement = (
        select(LedgerEntryRow.seq, LedgerEntryRow.body, LedgerEntryRow.hash)
        .where(LedgerEntryRow.cabinet_id == cabinet_id, LedgerEntryRow.seq > after_seq)
        .order_by(LedgerEntryRow.seq)
        .limit(limit)
    )
    if where.since is not None:
        statement = statement.where(LedgerEntryRow.recorded_at >= format_timestamp(where.since))
    if where.until is not None:
        statement = statement.where(LedgerEntryRow.recorded_at < format_timestamp(where.until))
    if where.user_id is not None:
        statement = statement.where(
            or_(LedgerEntryRow.actor_id == where.user_id, LedgerEntryRow.witness_id == where.user_id)
        )
    for column, value in (
        (LedgerEntryRow.item_id, where.item_id),
        (LedgerEntryRow.patient_id, where.patient_id),
        (LedgerEntryRow.event_type, where.event_type),
    ):
        if value is not None:
            statement = statement.where(column == value)
    return [HashedEntry(row.seq, row.body, row.hash) for row in session.execute(statement).all()]


def last_seq(session: Session, cabinet_id: str) -> int:
    """The cabinet's highest sequence number; 0 before its first entry."""
    last = session.execute(
        select(func.coalesce(func.max(LedgerEntryRow.seq), 0)).where(LedgerEntryRow.cabinet_id == cabinet_id)
    ).scalar_one()
    return int(last)


def entries_after(session: Session, cabinet_id: str, after_seq: int, *, limit: int) -> list[EntryBody]:
    """The next ``limit`` entries after ``after_seq``, in sequence order."""
    rows = session.execute(
        select(LedgerEntryRow.seq, LedgerEntryRow.body)
        .where(LedgerEntryRow.cabinet_id == cabinet_id, LedgerEntryRow.seq > after_seq)
        .order_by(LedgerEntryRow.seq)
        .limit(limit)
    ).all()
    return [EntryBody(row.seq, row.body) for row in rows]


def latest_bodies(session: Session, cabinet_id: str, event_type: str, *, limit: int) -> list[str]:
    """The bodies of the last ``limit`` entries of ``event_type``, newest first."""
    bodies = session.execute(
        select(LedgerEntryRow.body)
        .where(LedgerEntryRow.cabinet_id == cabinet_id, LedgerEntryRow.event_type == event_type)
        .order_by(LedgerEntryRow.seq.desc())
        .limit(limit)
    ).scalars()
    return list(bodies)


def verify_ledger(db: Database) -> VerifyReport:
    """Recompute every cabinet's hash chain on a reader connection (it streams; it never blocks the writer)."""
    with db.reader.connect() as connection:
        return verify_chain(connection)
