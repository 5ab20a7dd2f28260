"""Stock for pharmacy and integrators: pockets with item, quantity, par levels and lots (first-expiring first),
lots expiring soon, and which lots are blocked. Read from the store; quantities are never shown to a nurse's
screen through these routes (they need a pharmacy privilege)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from controller.api.access import Access
from controller.api.routing import PROBLEMS, DataList, engine_of
from controller.domain.users import Privilege
from controller.store.engine_state import QUARANTINE_ACTIVE
from controller.store.inventory import PocketView, list_pockets
from controller.store.models import QuarantinedLotRow

router = APIRouter(
    prefix="/api/v1/inventory",
    tags=["inventory"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.RESTOCK, Privilege.REVIEW, Privilege.ADMINISTER, scope="inventory:read"))],
)


@router.get("/pockets", response_model=DataList, summary="Every pocket with its stock and lots")
async def pockets(request: Request) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        found = list_pockets(session, engine.cabinet_id)
        blocked = _blocked(session, engine.cabinet_id)
    return JSONResponse({"data": [_pocket(p, blocked) for p in found]})


@router.get("/expiring", response_model=DataList, summary="Lots expiring within a number of days (or expired)")
async def expiring(
    request: Request, days: Annotated[int, Query(ge=0, le=3650, description="look this many days ahead")] = 30
) -> JSONResponse:
    engine = engine_of(request)
    today = engine.clock.now().date()
    horizon = today + timedelta(days=days)
    with engine.db.read() as session:
        found = list_pockets(session, engine.cabinet_id)
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


def _blocked(session: Any, cabinet_id: str) -> set[tuple[str | None, str, str]]:
    """(pocket or None for everywhere, item, lot) of every active hold."""
    rows = session.execute(
        select(QuarantinedLotRow.pocket_id, QuarantinedLotRow.item_id, QuarantinedLotRow.lot_number).where(
            QuarantinedLotRow.cabinet_id == cabinet_id, QuarantinedLotRow.status == QUARANTINE_ACTIVE
        )
    ).all()
    return {(r.pocket_id, r.item_id, r.lot_number) for r in rows}


def _pocket(p: PocketView, blocked: set[tuple[str | None, str, str]]) -> dict[str, Any]:
    def held(lot: str) -> bool:
        return p.item_id is not None and bool({(p.pocket_id, p.item_id, lot), (None, p.item_id, lot)} & blocked)

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
