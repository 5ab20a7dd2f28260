"""The cabinet's side of the fleet link in its own store: what of its ledger has gone to the central server, and
the central's acknowledged head written back as ``fleet.anchored`` entries.

Responsible for: reading ledger entries after a seq (the forwarder's cursor is the cabinet's own seq), the forward
state, anchoring, and halting when the central's head contradicts the cabinet's chain. Not responsible for
transport (``controller.fleet.forwarder``) or for what the central sends down (``controller.store.fleet_downlink``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.chain import ChainEntry
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.ledger import Ledger
from controller.store.models import (
    FleetForwardStateRow,
    LedgerEntryRow,
    LedgerHeadRow,
)


@dataclass(frozen=True, slots=True)
class ForwardState:
    published_seq: int = 0
    acknowledged_seq: int = 0
    acknowledged_hash: str | None = None
    anchored_seq: int = 0
    anchored_at: datetime | None = None
    halted_code: str | None = None
    halted_detail: str | None = None


def forward_state(db: Database, cabinet_id: str) -> ForwardState:
    with db.read() as session:
        row = session.get(FleetForwardStateRow, cabinet_id)
        return _state_of(row)


def _state_of(row: FleetForwardStateRow | None) -> ForwardState:
    if row is None:
        return ForwardState()
    anchored_at = row.anchored_at
    if anchored_at is not None and anchored_at.tzinfo is None:
        anchored_at = anchored_at.replace(tzinfo=UTC)
    return ForwardState(
        row.published_seq, row.acknowledged_seq, row.acknowledged_hash, row.anchored_seq, anchored_at,
        row.halted_code, row.halted_detail,
    )  # fmt: skip


def _state_row(session: Session, cabinet_id: str, now: datetime) -> FleetForwardStateRow:
    row = session.get(FleetForwardStateRow, cabinet_id)
    if row is None:
        row = FleetForwardStateRow(
            cabinet_id=cabinet_id, published_seq=0, acknowledged_seq=0, anchored_seq=0, updated_at=now
        )
        session.add(row)
    return row


def head_seq(db: Database, cabinet_id: str) -> int:
    with db.read() as session:
        seq = session.execute(select(LedgerHeadRow.last_seq).where(LedgerHeadRow.cabinet_id == cabinet_id)).scalar()
        return int(seq or 0)


def entries_after(db: Database, cabinet_id: str, seq: int, *, limit: int) -> list[ChainEntry]:
    with db.read() as session:
        rows = session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.prev_hash, LedgerEntryRow.hash, LedgerEntryRow.body)
            .where(LedgerEntryRow.cabinet_id == cabinet_id, LedgerEntryRow.seq > seq)
            .order_by(LedgerEntryRow.seq)
            .limit(limit)
        ).all()
    return [ChainEntry(cabinet_id, int(r.seq), r.prev_hash, r.hash, r.body) for r in rows]


def entry_at(db: Database, cabinet_id: str, seq: int) -> tuple[str, str] | None:
    """The hash and event type of the cabinet's entry at ``seq``."""
    with db.read() as session:
        row = session.execute(
            select(LedgerEntryRow.hash, LedgerEntryRow.event_type).where(
                LedgerEntryRow.cabinet_id == cabinet_id, LedgerEntryRow.seq == seq
            )
        ).first()
    return None if row is None else (str(row.hash), str(row.event_type))


def mark_published(db: Database, cabinet_id: str, seq: int, now: datetime) -> None:
    with db.write() as session:
        row = _state_row(session, cabinet_id, now)
        if seq > row.published_seq:
            row.published_seq = seq
            row.updated_at = now


def rewind(db: Database, cabinet_id: str, to_seq: int, now: datetime) -> None:
    """The central lacks entries from ``to_seq + 1``: publish again from there (a republish is dropped by
    JetStream or judged a duplicate by the central, never applied twice)."""
    with db.write() as session:
        row = _state_row(session, cabinet_id, now)
        if to_seq < row.published_seq:
            row.published_seq = max(0, to_seq)
            row.updated_at = now


def record_acknowledged(db: Database, cabinet_id: str, seq: int, digest: str, now: datetime) -> ForwardState:
    """Keep the central's head as last heard; returns the forward state with it."""
    with db.write() as session:
        row = _state_row(session, cabinet_id, now)
        if seq >= row.acknowledged_seq:
            row.acknowledged_seq, row.acknowledged_hash, row.updated_at = seq, digest, now
        return _state_of(row)


def anchor(db: Database, ledger: Ledger, seq: int, digest: str, now: datetime) -> int:
    """Write the central's committed head into the cabinet's ledger; returns the anchor entry's own seq."""
    with db.write() as session:
        sealed = ledger.append(
            session,
            LedgerRecord(
                EventType.FLEET_ANCHORED,
                actor_id="system",
                details={"central_seq": seq, "central_hash": digest},
            ),
        )
        row = _state_row(session, ledger.cabinet_id, now)
        row.anchored_seq, row.anchored_at, row.updated_at = seq, now, now
        return sealed.seq


def halt(db: Database, ledger: Ledger, code: str, detail: str, now: datetime) -> None:
    """The cabinet's chain contradicts the central's: stop forwarding and say so in the ledger, once."""
    with db.write() as session:
        row = _state_row(session, ledger.cabinet_id, now)
        if row.halted_code is not None:
            return
        row.halted_code, row.halted_detail, row.updated_at = code, detail, now
        ledger.append(
            session,
            LedgerRecord(EventType.TAMPER_ALARM, actor_id="system", reason_code=code, note=detail[:500]),
        )
