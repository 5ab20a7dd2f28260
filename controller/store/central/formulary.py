"""The hospital's formulary at the central: the items every cabinet's entries name, so the pharmacy's fleet views
show names, not ids. Loading adds the items the central lacks and leaves the ones it holds as they are (changing
an item is a formulary change of its own, not a reload)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.store import repositories as repo
from controller.store.formulary_file import FormularyEntry
from controller.store.models import MedicationRow


def add_missing(session: Session, entries: Iterable[FormularyEntry]) -> int:
    """Add the entries whose item id the central does not hold yet (in the caller's transaction); how many."""
    held = set(session.execute(select(MedicationRow.id)).scalars())
    added = 0
    for entry in entries:
        if entry.medication.id not in held:
            repo.save_medication(session, entry.medication)
            held.add(entry.medication.id)
            added += 1
    return added
