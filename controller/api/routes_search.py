"""Drug search: at least 5 characters (ISMP), matching the start of any word of the names; each match says which
of this cabinet's pockets hold it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from controller.api.access import Access
from controller.api.medication_view import medication_view
from controller.api.routing import PROBLEMS, Data, engine_of
from controller.domain.policies import search_medications
from controller.domain.users import Privilege
from controller.store import repositories as repo

router = APIRouter(
    prefix="/api/v1/medications",
    tags=["formulary"],
    responses=PROBLEMS,
    dependencies=[Depends(Access(Privilege.REMOVE, Privilege.RESTOCK, Privilege.REVIEW, scope="formulary:read"))],
)


@router.get(
    "/search",
    response_model=Data,
    summary="Search the formulary",
    description="Fewer than the policy's minimum characters (5) is refused with policy.search_too_short: "
    "'ve' once picked vecuronium instead of Versed.",
)
async def search(
    request: Request, q: Annotated[str, Query(max_length=100, description="part of a name")]
) -> JSONResponse:
    engine = engine_of(request)
    with engine.db.read() as session:
        formulary = repo.list_medications(session)
    found = search_medications(engine.policy, q, formulary)  # raises policy.search_too_short
    pockets: dict[str, list[str]] = {}
    for slot in engine.slots.values():
        if slot.item_id is not None:
            pockets.setdefault(slot.item_id, []).append(slot.pocket_id)
    matches = [medication_view(m) | {"pocket_ids": pockets.get(m.id, [])} for m in found.matches]
    return JSONResponse({"data": {"unique": found.unique, "matches": matches}})
