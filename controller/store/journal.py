"""The workflow journal and the recorded opening counts: what the engine needs after a crash.

Responsible for: writing a workflow's journal row (insert or update, in the caller's transaction, so it commits
with the step's ledger entries), ending it, and reading back the rows still live; keeping, per compartment, the
I/O board's opening count up to which every opening is in the ledger. Not responsible for deciding what a live row
means after a restart (the engine's handlers do) or for what goes in ``details`` (plain JSON the handler owns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.store.models import CompartmentOpeningsRow, WorkflowJournalRow


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One workflow as the journal holds it. ``compartments`` are the compartments it holds (or asked for) a grant
    on; ``details`` is what its handler needs to recover it."""

    workflow_id: str
    kind: str
    actor_id: str
    session_id: int
    state: str
    started_at: datetime
    patient_id: str | None = None
    item_id: str | None = None
    pocket_id: str | None = None
    compartments: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


def write_journal(session: Session, cabinet_id: str, entry: JournalEntry, *, now: datetime) -> None:
    row = session.get(WorkflowJournalRow, (cabinet_id, entry.workflow_id))
    if row is None:
        row = WorkflowJournalRow(cabinet_id=cabinet_id, workflow_id=entry.workflow_id, started_at=entry.started_at)
        session.add(row)
    row.kind, row.actor_id, row.session_id, row.state = entry.kind, entry.actor_id, entry.session_id, entry.state
    row.patient_id, row.item_id, row.pocket_id = entry.patient_id, entry.item_id, entry.pocket_id
    row.compartments = json.dumps(list(entry.compartments))
    row.details = json.dumps(dict(entry.details), sort_keys=True, default=str)
    row.updated_at = now
    row.live = True
    session.flush()


def end_journal(session: Session, cabinet_id: str, workflow_id: str, *, state: str, now: datetime) -> None:
    """The workflow ended (done, cancelled, recovered): its row stays as history, no longer live."""
    row = session.get(WorkflowJournalRow, (cabinet_id, workflow_id))
    if row is None:
        return  # it never held anything worth journaling
    row.state, row.updated_at, row.live = state, now, False
    session.flush()


def live_journal(session: Session, cabinet_id: str) -> list[JournalEntry]:
    rows = session.execute(
        select(WorkflowJournalRow)
        .where(WorkflowJournalRow.cabinet_id == cabinet_id, WorkflowJournalRow.live.is_(True))
        .order_by(WorkflowJournalRow.started_at, WorkflowJournalRow.workflow_id)
    ).scalars()
    return [
        JournalEntry(
            workflow_id=r.workflow_id,
            kind=r.kind,
            actor_id=r.actor_id,
            session_id=int(r.session_id),
            state=r.state,
            started_at=_aware(r.started_at),
            patient_id=r.patient_id,
            item_id=r.item_id,
            pocket_id=r.pocket_id,
            compartments=tuple(json.loads(r.compartments)),
            details=json.loads(r.details),
        )
        for r in rows
    ]


# --- opening counts -------------------------------------------------------------------------------------------------


def recorded_openings(session: Session, cabinet_id: str) -> dict[str, int]:
    """Compartment id -> the board's opening count up to which every opening is recorded."""
    rows = session.execute(select(CompartmentOpeningsRow).where(CompartmentOpeningsRow.cabinet_id == cabinet_id))
    return {r.compartment_id: int(r.recorded) for r in rows.scalars()}


def set_recorded_openings(session: Session, cabinet_id: str, counts: Mapping[str, int], *, now: datetime) -> None:
    for compartment_id, recorded in counts.items():
        row = session.get(CompartmentOpeningsRow, (cabinet_id, compartment_id))
        if row is None:
            row = CompartmentOpeningsRow(cabinet_id=cabinet_id, compartment_id=compartment_id)
            session.add(row)
        row.recorded, row.updated_at = recorded, now
    session.flush()
