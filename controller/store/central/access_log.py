"""The central API's record of refused calls (``fleet_access_refusals``, append-only): who (when known), which
route (its template), which code. Written in its own short transaction, so a refusal is kept even when the call
that was refused wrote nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from controller.store.central import tables as t
from controller.store.database import Database


def record_refusal(db: Database, *, code: str, route: str, method: str, actor_id: str | None, remote: str | None,
                   at: datetime) -> None:  # fmt: skip
    with db.writer.begin() as connection:
        connection.execute(insert(t.access_refusals).values(
            at=at, code=code[:64], route=route[:200], method=method[:10],
            actor_id=actor_id[:80] if actor_id else None, remote=remote[:64] if remote else None,
        ))  # fmt: skip
