"""A user as the hospital's central directory hands it to the cabinets: hashes only, never a PIN, with a version
that only grows, so a cabinet applies a record only if it is newer than the one it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    user_id: str
    version: int
    display_name: str
    pin_hash: str
    badge_hash: str | None
    roles: tuple[str, ...]
    active: bool
    expires_at: datetime | None


def to_document(user: DirectoryUser) -> dict[str, Any]:
    """The record as JSON-ready data: what the central stores and what travels to the cabinets."""
    return {
        "user_id": user.user_id,
        "version": user.version,
        "display_name": user.display_name,
        "pin_hash": user.pin_hash,
        "badge_hash": user.badge_hash,
        "roles": sorted(user.roles),
        "active": user.active,
        "expires_at": user.expires_at.isoformat() if user.expires_at else None,
    }


def from_document(document: Mapping[str, Any]) -> DirectoryUser:
    """The record from its document; a missing or ill-typed field raises KeyError, TypeError or ValueError."""
    expires = document.get("expires_at")
    badge = document.get("badge_hash")
    return DirectoryUser(
        user_id=str(document["user_id"]),
        version=int(document["version"]),
        display_name=str(document["display_name"]),
        pin_hash=str(document["pin_hash"]),
        badge_hash=None if badge is None else str(badge),
        roles=tuple(str(r) for r in document["roles"]),
        active=bool(document["active"]),
        expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
    )


def kv_token(text: str) -> str:
    """A key part for a NATS KV bucket from an id (letters, digits, ``-`` and ``_`` kept; anything else, the
    bucket's separator ``.`` included, escaped as ``=hhhh``)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else f"={ord(ch):04x}" for ch in text)


def census_key(care_area: str, patient_id: str) -> str:
    """A care area's patient in the census bucket: a cabinet watches ``<its care area>.>``."""
    return f"{kv_token(care_area)}.{kv_token(patient_id)}"


CENSUS, FORMULARY = "census", "formulary"  # the kinds of downlink document besides the users


@dataclass(frozen=True, slots=True)
class DownlinkDocument:
    """Another versioned document the central sends down (a formulary item, a care area's patient): what it is,
    its key in its bucket, its version (only grows), and its content."""

    kind: str
    key: str
    version: int
    content: Mapping[str, Any]


def downlink_to_document(document: DownlinkDocument) -> dict[str, Any]:
    return {"kind": document.kind, "key": document.key, "version": document.version, "content": dict(document.content)}


def downlink_from_document(document: Mapping[str, Any]) -> DownlinkDocument:
    content = document["content"]
    if not isinstance(content, Mapping):
        raise TypeError("the content is not an object")
    return DownlinkDocument(str(document["kind"]), str(document["key"]), int(document["version"]), content)
