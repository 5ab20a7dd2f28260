"""The hospital's user directory at the central server, versioned for the cabinets.

Responsible for: the directory record of each user (from the same ``users`` tables a cabinet has: hashes only),
bumping its version in the transaction that changes the user, so a cabinet can tell a newer record from an older
one; and listing records for publication. Not responsible for publishing them (``controller.fleet.directory``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from controller.domain.directory import DirectoryUser, from_document, to_document
from controller.errors import ConfigurationError
from controller.store.central import tables as t
from controller.store.models import UserRow


def _record(row: UserRow, version: int) -> DirectoryUser:
    expires = row.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; everything is stored in UTC
    roles = tuple(sorted(r.role for r in row.roles))
    return DirectoryUser(row.id, version, row.display_name, row.pin_hash, row.badge_hash, roles, row.active, expires)


def bump(session: Session, user_id: str, now: datetime) -> DirectoryUser:
    """Record the user's current state as the next version of its directory record (in the caller's transaction)."""
    row = session.get(UserRow, user_id)
    if row is None:
        raise ConfigurationError("config.invalid", f"no user {user_id!r} in the central directory")
    connection = session.connection()
    held = connection.execute(
        select(t.directory.c.version)
        .where(t.directory.c.kind == "user", t.directory.c.key == user_id)
        .with_for_update()
    ).scalar()
    record = _record(row, int(held or 0) + 1)
    version, payload = record.version, to_document(record)
    connection.execute(
        pg_insert(t.directory)
        .values(kind="user", key=user_id, version=version, payload=payload, updated_at=now)
        .on_conflict_do_update(
            index_elements=["kind", "key"], set_={"version": version, "payload": payload, "updated_at": now}
        )
    )
    return record


def set_active(session: Session, user_id: str, active: bool, now: datetime) -> DirectoryUser:
    row = session.get(UserRow, user_id)
    if row is None:
        raise ConfigurationError("config.invalid", f"no user {user_id!r} in the central directory")
    row.active = active
    session.flush()
    return bump(session, user_id, now)


def versions(connection: Connection) -> dict[str, int]:
    """Each user's current directory version: what a publisher compares before it reads any record."""
    found = connection.execute(select(t.directory.c.key, t.directory.c.version).where(t.directory.c.kind == "user"))
    return {str(r.key): int(r.version) for r in found}


def records(connection: Connection, user_ids: Collection[str]) -> list[DirectoryUser]:
    found = connection.execute(
        select(t.directory.c.payload).where(t.directory.c.kind == "user", t.directory.c.key.in_(sorted(user_ids)))
    ).scalars()
    return [from_document(payload) for payload in found]
