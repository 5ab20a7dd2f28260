"""What the ledger says, read straight from ``ledger_entries`` with SQL and ``json``, independently of
``controller.reports``: the numbers the reports must agree with."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from controller.store.database import Database
from controller.store.ledger import format_timestamp

CONTROLLED = {"MORPHINE-4MG-ML-CARP", "MIDAZOLAM-1MG-ML-2ML"}  # the scenario's controlled items


def bodies(db: Database, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    query = "SELECT body FROM ledger_entries WHERE recorded_at >= :since AND recorded_at < :until ORDER BY seq"
    bounds = {
        "since": format_timestamp(since) if since else "0",
        "until": format_timestamp(until) if until else "9",
    }
    with db.reader.connect() as connection:
        return [json.loads(body) for (body,) in connection.execute(sa.text(query), bounds)]


def units(entries: list[dict[str, Any]], event_types: set[str], **match: Any) -> int:
    """Sum of quantity_change of the entries of those types whose fields equal ``match``."""
    return sum(
        int(e["quantity_change"])
        for e in entries
        if e["event_type"] in event_types and all(e[k] == v for k, v in match.items())
    )


def pulls(entries: list[dict[str, Any]], **match: Any) -> Counter[str]:
    """Removals (distinct pulls) per actor."""
    seen = {
        e["details"]["pull_id"]: e["actor_id"]
        for e in entries
        if e["event_type"] == "dose.removed" and all(e[k] == v for k, v in match.items())
    }
    return Counter(seen.values())


def overrides(entries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["actor_id"] for e in entries if e["event_type"] == "dose.override")


def on_hand_by_lot(db: Database) -> dict[tuple[str, str], int]:
    """(pocket, lot) -> units, from the stock table the store keeps beside the ledger."""
    with db.reader.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT pocket_id, lot_number, quantity FROM pocket_lots WHERE quantity > 0")
        ).all()
    return {(r.pocket_id, r.lot_number): int(r.quantity) for r in rows}
