"""A user as the hospital's central directory hands it to the cabinets: hashes only, never a PIN, with a version
that only grows, so a cabinet applies a record only if it is newer than the one it holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
