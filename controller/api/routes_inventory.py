"""Stock for pharmacy and integrators: pockets with item, quantity, par levels and lots (first-expiring first),
lots expiring soon, and which lots are blocked. Read from the store; quantities are never shown to a nurse's
screen through these routes (they need a pharmacy privilege)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from controller.api.access import Access, runtime_of
from controller.api.routing import PROBLEMS, DataList, engine_of
from controller.domain.users import Privilege
from controller.store.inventory import PocketView, list_pockets
from controller.store.queries.inventory_reads import LotHold, active_holds

router = APIRouter(
    prefix="/api/v1/inventory",
    tags=["inventory"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.RESTOCK, Privilege.REVIEW, Privilege.ADMINISTER, scope="inventory:read"))],
)


@router.get("/pockets", response_model=DataList, summary="Every pocket with its stock and lots")
async def pockets(request: Request) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    with runtime.db.read() as session:
        found = list_pockets(session, runtime.cabinet_id)
        blocked = active_holds(session, runtime.cabinet_id)
    return JSONResponse({"data": [_pocket(p, blocked) for p in found]})


@router.get("/expiring", response_model=DataList, summary="Lots expiring within a number of days (or expired)")
async def expiring(
    request: Request, days: Annotated[int, Query(ge=0, le=3650, description="look this many days ahead")] = 30
) -> JSONResponse:
    engine_of(request)  # 503 until the cabinet is ready
    runtime = runtime_of(request)
    today = runtime.clock.now().date()
    horizon = today + timedelta(days=days)
    with runtime.db.read() as session:
        found = list_pockets(session, runtime.cabinet_id)
    lots = [
        {
            "pocket_id": p.pocket_id,
            "item_id": p.item_id,
            "item": p.item_name,
            "lot": lot.lot_number,
            "expiry": lot.expiry.isoformat(),
            "quantity": lot.quantity,
            "expired": lot.expiry < today,
        }
        for p in found
        for lot in p.lots
        if lot.expiry <= horizon
    ]
    lots.sort(key=lambda line: (line["expiry"], line["pocket_id"]))
    return JSONResponse({"data": lots})


def _pocket(p: PocketView, blocked: frozenset[LotHold]) -> dict[str, Any]:
    def held(lot: str) -> bool:
        item = p.item_id
        return item is not None and (LotHold(p.pocket_id, item, lot) in blocked or LotHold(None, item, lot) in blocked)

    return {
        "pocket_id": p.pocket_id,
        "drawer_id": p.drawer_id,
        "drawer_kind": p.drawer_kind,
        "position": p.position,
        "item_id": p.item_id,
        "item": p.item_name,
        "dea_schedule": p.dea_schedule,
        "quantity": p.quantity,
        "par": p.par,
        "min": p.min,
        "max": p.max,
        "next_expiry": p.next_expiry.isoformat() if p.next_expiry else None,
        "lots": [
            {"lot": lot.lot_number, "expiry": lot.expiry.isoformat(), "quantity": lot.quantity,
             "quarantined": held(lot.lot_number)}
            for lot in p.lots
        ],
    }  # fmt: skip
