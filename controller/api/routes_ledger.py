"""The ledger: query entries by time, user (actor or witness), item, patient and event type, paged by sequence
number; and verify the hash chain. Read-only: no route writes or changes an entry."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from controller.api.access import Access, runtime_of
from controller.api.problems import ApiError
from controller.api.routing import PROBLEMS, Data, engine_of
from controller.domain.users import Privilege
from controller.store.queries.ledger_reads import LedgerFilter, entries, verify_ledger

router = APIRouter(
    prefix="/api/v1/ledger",
    tags=["ledger"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.REVIEW, Privilege.ADMINISTER, scope="ledger:read"))],
)

Text = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get(
    "",
    response_model=Data,
    summary="Query the ledger",
    description="Entries of this cabinet in sequence order after ``after_seq``; ``next_after_seq`` continues. "
    "Times are ISO 8601 with a zone.",
)
async def query(
    request: Request,
    *,
    since: Annotated[datetime | None, Query(description="recorded at or after")] = None,
    until: Annotated[datetime | None, Query(description="recorded before")] = None,
    user_id: Text = None,
    item_id: Text = None,
    patient_id: Text = None,
    event_type: Text = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ApiError("api.validation", "give times with a zone (e.g. 2026-11-25T14:00:00Z)")
    where = LedgerFilter(
        since=since, until=until, user_id=user_id, item_id=item_id, patient_id=patient_id, event_type=event_type
    )
    with runtime.db.read() as session:
        rows = entries(session, runtime.cabinet_id, where, after_seq=after_seq, limit=limit)
    found: list[dict[str, Any]] = [json.loads(row.body) | {"hash": row.hash} for row in rows]
    next_after = rows[-1].seq if len(rows) == limit else None
    return JSONResponse({"data": {"entries": found, "next_after_seq": next_after}})


@router.get("/verify", response_model=Data, summary="Recompute the hash chain")
async def verify(request: Request) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    db = runtime_of(request).db

    def run() -> dict[str, Any]:
        report = verify_ledger(db)
        return {
            "ok": report.ok,
            "entries_checked": report.entries_checked,
            "cabinets": list(report.cabinets),
            "problems": [
                {"cabinet_id": p.cabinet_id, "seq": p.seq, "kind": p.kind, "detail": p.detail} for p in report.problems
            ],
        }

    return JSONResponse({"data": await asyncio.to_thread(run)})
