"""The hospital's user directory at the central server, versioned for the cabinets.

Responsible for: the directory record of each user (from the same ``users`` tables a cabinet has: hashes only),
bumping its version in the transaction that changes the user, so a cabinet can tell a newer record from an older
one; and listing records for publication. Not responsible for publishing them (``controller.fleet.directory``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from controller.domain.directory import DirectoryUser
from controller.errors import ConfigurationError
from controller.store.central import tables as t
from controller.store.models import UserRow


def _payload(row: UserRow, version: int) -> dict[str, Any]:
    expires = row.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return {
        "user_id": row.id,
        "version": version,
        "display_name": row.display_name,
        "pin_hash": row.pin_hash,
        "badge_hash": row.badge_hash,
        "roles": sorted(r.role for r in row.roles),
        "active": row.active,
        "expires_at": expires.isoformat() if expires else None,
    }


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
    version = int(held or 0) + 1
    payload = _payload(row, version)
    connection.execute(
        pg_insert(t.directory)
        .values(kind="user", key=user_id, version=version, payload=payload, updated_at=now)
        .on_conflict_do_update(
            index_elements=["kind", "key"], set_={"version": version, "payload": payload, "updated_at": now}
        )
    )
    return record_of(payload)


def set_active(session: Session, user_id: str, active: bool, now: datetime) -> DirectoryUser:
    row = session.get(UserRow, user_id)
    if row is None:
        raise ConfigurationError("config.invalid", f"no user {user_id!r} in the central directory")
    row.active = active
    session.flush()
    return bump(session, user_id, now)


def records(connection: Connection) -> list[DirectoryUser]:
    found = connection.execute(select(t.directory.c.payload).where(t.directory.c.kind == "user")).scalars().all()
    return [record_of(p) for p in found]


def record_of(payload: dict[str, Any]) -> DirectoryUser:
    expires = payload.get("expires_at")
    return DirectoryUser(
        user_id=str(payload["user_id"]),
        version=int(payload["version"]),
        display_name=str(payload["display_name"]),
        pin_hash=str(payload["pin_hash"]),
        badge_hash=payload.get("badge_hash"),
        roles=tuple(payload["roles"]),
        active=bool(payload["active"]),
        expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
    )
