"""Drug search: at least 5 characters (ISMP), matching the start of any word of the names; each match says which
of this cabinet's pockets hold it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from controller.api.access import Access
from controller.api.medication_view import medication_view
from controller.api.routing import PROBLEMS, Data, engine_of
from controller.domain.users import Privilege
from controller.engine.commands.pull import SearchMedications

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
    found = engine_of(request).query(SearchMedications(q)).unwrap()  # raises policy.search_too_short
    matches = [medication_view(m) | {"pocket_ids": list(pockets)} for m, pockets in found.matches]
    return JSONResponse({"data": {"unique": found.unique, "matches": matches}})
