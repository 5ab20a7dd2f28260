"""The cabinet's side of the fleet link in its own store: what of its ledger has gone to the central server, the
central's acknowledged head written back as ``fleet.anchored`` entries, and directory records applied by version.

Responsible for: reading ledger entries after a seq (the forwarder's cursor is the cabinet's own seq), the forward
state, anchoring, halting when the central's head contradicts the cabinet's chain, and applying a central user
record to the cabinet's users (hashes only) unless it is older than the one held, which is refused with a ledger
entry. Not responsible for transport (``controller.fleet.forwarder``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain.chain import ChainEntry
from controller.domain.directory import DirectoryUser
from controller.domain.transactions import EventType, LedgerRecord
from controller.store.database import Database
from controller.store.ledger import Ledger
from controller.store.models import (
    FleetDownlinkVersionRow,
    FleetForwardStateRow,
    LedgerEntryRow,
    LedgerHeadRow,
    UserRoleRow,
    UserRow,
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


# --- directory ----------------------------------------------------------------------------------------------------


def apply_directory_user(db: Database, ledger: Ledger, user: DirectoryUser, now: datetime) -> str:
    """Apply one central user record: ``applied``, ``same`` (this version is held) or ``stale`` (older than the
    one held: refused, with a ledger entry saying so)."""
    with db.write() as session:
        held = session.get(FleetDownlinkVersionRow, ("user", user.user_id))
        if held is not None and user.version == held.version:
            return "same"
        if held is not None and user.version < held.version:
            note = f"user {user.user_id}: version {user.version} is older than the {held.version} held"
            details = {"kind": "user", "key": user.user_id, "version": user.version, "held": held.version}
            ledger.append(session, _directory_refusal("fleet.stale_downlink", note, details))
            return "stale"
        row = session.get(UserRow, user.user_id)
        if row is None:
            row = UserRow(id=user.user_id, created_at=now)
            session.add(row)
        row.display_name, row.pin_hash, row.badge_hash = user.display_name, user.pin_hash, user.badge_hash
        row.active, row.expires_at = user.active, user.expires_at
        row.roles = [UserRoleRow(role=role) for role in sorted(set(user.roles))]
        if held is None:
            session.add(FleetDownlinkVersionRow(kind="user", key=user.user_id, version=user.version, applied_at=now))
        else:
            held.version, held.applied_at = user.version, now
        return "applied"


def refuse_directory_record(db: Database, ledger: Ledger, code: str, note: str) -> None:
    """A directory record the cabinet could not read: refused, and the refusal recorded."""
    with db.write() as session:
        ledger.append(session, _directory_refusal(code, note[:500], {"kind": "user"}))


def _directory_refusal(code: str, note: str, details: dict[str, object]) -> LedgerRecord:
    return LedgerRecord(
        EventType.FLEET_DIRECTORY_REFUSED, actor_id="system", reason_code=code, note=note, details=details
    )
