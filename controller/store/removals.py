"""What one pull removed, read back from its ledger entries: the basis of every waste and return.

Responsible for: the pull's ``dose.removed`` entries (one per lot), less what was returned since, and whether a
waste is recorded or owed on it (``dose.wasted`` / ``dose.waste_pending`` entries), found by the indexed
``details.pull_id``. Not responsible for whether the user may waste or return it (the engine's handlers decide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.store.json_fields import DetailField
from controller.store.models import LedgerEntryRow

_KINDS = ("dose.removed", "dose.returned", "dose.wasted", "dose.waste_pending")


@dataclass(frozen=True, slots=True)
class Removal:
    """What one pull removed, from its ``DOSE_REMOVED`` entries (one per lot), less what was returned since."""

    pull_id: str
    actor_id: str
    item_id: str
    pocket_id: str
    patient_id: str | None
    order_id: str | None
    parts: tuple[tuple[str, int, date | None], ...]  # (lot, units, expiry), FEFO order
    first_seq: int
    at: datetime
    returned: int
    wasted: bool  # a waste is recorded or owed on it (in the ledger)

    @property
    def units(self) -> int:
        return sum(units for _, units, _ in self.parts)

    @property
    def remaining(self) -> int:
        return self.units - self.returned


def find_removal(session: Session, cabinet_id: str, pull_id: str) -> Removal | None:
    rows = session.execute(
        select(LedgerEntryRow.seq, LedgerEntryRow.event_type, LedgerEntryRow.body).where(
            LedgerEntryRow.cabinet_id == cabinet_id,
            LedgerEntryRow.event_type.in_(_KINDS),
            DetailField("pull_id") == pull_id,
        )
        # No ORDER BY in SQL: with one, SQLite (without ANALYZE statistics) prefers the (cabinet, seq) index and
        # reads the whole ledger; a pull has a handful of entries, sorted here.
    ).all()
    rows = sorted(rows, key=lambda row: int(row.seq))
    removed: list[dict[str, Any]] = []
    seqs: list[int] = []
    returned = 0
    wasted = False
    for seq, event_type, body in rows:
        doc = json.loads(body)
        if event_type == "dose.removed":
            if doc["quantity_change"]:
                removed.append(doc)
                seqs.append(int(seq))
        elif event_type == "dose.returned":
            returned += int(doc["quantity_change"] or 0)
        else:
            wasted = True
    if not removed:
        return None
    first = removed[0]
    parts = tuple(
        (
            str(d["lot_number"]),
            -int(d["quantity_change"]),
            date.fromisoformat(d["details"]["lot_expiry"]) if d["details"].get("lot_expiry") else None,
        )
        for d in removed
    )
    return Removal(
        pull_id=pull_id,
        actor_id=str(first["actor_id"]),
        item_id=str(first["item_id"]),
        pocket_id=str(first["pocket_id"]),
        patient_id=first["patient_id"],
        order_id=first["order_id"],
        parts=parts,
        first_seq=seqs[0],
        at=datetime.fromisoformat(first["details"]["occurred_at"]),
        returned=returned,
        wasted=wasted,
    )
