"""A cabinet's pocket assignments as its layout sets them, and the version of each central configuration document
the cabinet holds.

Responsible for: writing one pocket's item and levels (the checks that it may change come before, in the engine),
and reading and holding a downlink document's version (``fleet_downlink_versions``), inside the caller's
transaction so the entry recording the change and the change itself commit together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from controller.domain.cabinet_config import PocketAssignment
from controller.store.models import FleetDownlinkVersionRow, PocketRow


def held_version(session: Session, kind: str, key: str) -> int | None:
    row = session.get(FleetDownlinkVersionRow, (kind, key))
    return None if row is None else int(row.version)


def hold_version(session: Session, kind: str, key: str, version: int, now: datetime) -> None:
    row = session.get(FleetDownlinkVersionRow, (kind, key))
    if row is None:
        session.add(FleetDownlinkVersionRow(kind=kind, key=key, version=version, applied_at=now))
    else:
        row.version, row.applied_at = version, now
    session.flush()


def assign(session: Session, assignment: PocketAssignment) -> None:
    row = session.get(PocketRow, assignment.pocket_id)
    if row is None:
        raise KeyError(f"no pocket {assignment.pocket_id!r}")
    row.item_id = assignment.item_id
    # The levels check constraint holds at every step: lower the minimum first, raise the maximum first.
    row.min_level, row.max_level = min(row.min_level, assignment.min), max(row.max_level, assignment.max)
    session.flush()
    row.par_level, row.min_level, row.max_level = assignment.par, assignment.min, assignment.max
    session.flush()
