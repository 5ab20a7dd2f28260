"""``adc hl7 outbox``: the queue of outbound HL7 messages (dispense and charges) and what became of each.

Lists the undelivered messages (``--all``: the delivered ones too), oldest first, with their status, attempts,
refusals, when the next attempt is due and the last error; ``--json`` for scripts. ``--requeue ID`` sends a
parked message again once the reason it was refused is fixed (its patient's later messages follow it).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from controller.bootstrap import build_store
from controller.cli.options import DatabaseUrl, settings_from_env
from controller.integration.hl7.outbound import queue
from controller.store import schema

out = Console()


def outbox(
    as_json: Annotated[bool, typer.Option("--json", help="Print the queue as JSON.")] = False,
    include_delivered: Annotated[bool, typer.Option("--all", help="Include delivered messages.")] = False,
    requeue: Annotated[int | None, typer.Option("--requeue", help="Send this parked message (id) again.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many messages.", min=1)] = 200,
    database_url: DatabaseUrl = None,
) -> None:
    """Show the HL7 outbox of this cabinet (RDS^O13 dispenses, DFT^P03 charges and credits)."""
    settings = settings_from_env(database_url)
    store = build_store(settings)
    try:
        schema.require_current(store.db)
        cabinet_id = settings.cabinet_id
        if requeue is not None:
            control_id = queue.requeue(store.db, cabinet_id, requeue, store.clock.now())
            out.print(f"message #{requeue} ({control_id}) is queued again")
        rows = queue.listing(store.db, cabinet_id, include_delivered=include_delivered, limit=limit)
        totals = queue.counts(store.db, cabinet_id)
    finally:
        store.close()
    if as_json:
        document = {"cabinet_id": cabinet_id, "counts": totals, "messages": [_plain(row) for row in rows]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    summary = ", ".join(f"{count} {status}" for status, count in totals.items())
    table = Table(title=f"HL7 outbox of cabinet {cabinet_id}: {summary}", box=box.SIMPLE_HEAD)
    for column in ("id", "control id", "type", "patient", "status", "tries", "next attempt", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["control_id"],
            row["message_type"],
            row["patient_key"] or "—",
            row["status"],
            f"{row['attempts']} ({row['refusals']} refused)" if row["refusals"] else str(row["attempts"]),
            _time(row["next_attempt_at"]) if row["status"] == queue.PENDING else "—",
            f"[{row['last_error_code']}] {row['last_error']}" if row["last_error_code"] else "",
        )
    out.print(table if rows else f"{table.title}\nnothing waiting")


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}
