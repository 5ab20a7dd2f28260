"""Pharmacy oversight: discrepancies (list, resolve by two people, review by a pharmacist who was neither), the
override review queue, quarantine (recall a lot, review a hold) and critical-override mode; accounting for a
compartment found open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, Principal
from controller.api.routing import PROBLEMS, Body, Data, Lax, ask, example, run
from controller.domain.policies import OverrideReviewOutcome
from controller.domain.quarantine import QuarantineDecision, QuarantineReviewReason
from controller.domain.users import Privilege
from controller.engine.commands.cabinet import AccountFor, ServiceCompartment, SetCriticalOverride
from controller.engine.commands.clinical import (
    ListDiscrepancies,
    ListOverrideReviews,
    ResolveDiscrepancy,
    ReviewDiscrepancy,
    ReviewOverride,
)
from controller.engine.commands.pharmacy import ListQuarantines, RecallLot, ReviewQuarantine
from controller.fsm.workflows.discrepancy import DiscrepancyReason

router = APIRouter(prefix="/api/v1", responses=PROBLEMS)

Reviewer = Annotated[Principal, Depends(Access(Privilege.REVIEW))]
Note = Annotated[str, Field(max_length=500)]
PathId = Annotated[str, Path(min_length=1, max_length=64)]
PathNumber = Annotated[int, Path(ge=1, le=2**62)]


class ResolveBody(Body):
    model_config = example({"reason": "miscount_previous", "note": "recounted twice"})
    reason: Lax[DiscrepancyReason]
    note: Note | None = None


class NoteBody(Body):
    note: Note | None = None


class OverrideReviewBody(Body):
    model_config = example({"outcome": "appropriate"})
    outcome: Lax[OverrideReviewOutcome]
    note: Note | None = None


class RecallBody(Body):
    model_config = example({"ndc": "0409-1891-01", "lot_number": "B2"})
    ndc: Annotated[str, Field(min_length=10, max_length=14, pattern=r"^[0-9-]+$")]
    lot_number: Annotated[str, Field(min_length=1, max_length=20)]
    reason: Annotated[str, Field(min_length=1, max_length=40)] = "recall"


class QuarantineReviewBody(Body):
    model_config = example({"decision": "release", "reason": "within_stability_data"})
    decision: Lax[QuarantineDecision]
    reason: Lax[QuarantineReviewReason]
    note: Note | None = None


class CriticalOverrideBody(Body):
    model_config = example({"enabled": True, "reason": "mass casualty incident"})
    enabled: bool
    reason: Annotated[str, Field(max_length=200)] = ""


class AccountBody(Body):
    counted: int | None = Field(default=None, ge=0, le=100_000)


# --- discrepancies ---------------------------------------------------------------------------------------------


@router.get(
    "/discrepancies",
    response_model=Data,
    tags=["discrepancy"],
    summary="Discrepancies not yet reviewed",
    dependencies=[Depends(Access(Privilege.RESOLVE_DISCREPANCY, Privilege.REVIEW))],
)
async def discrepancies(request: Request) -> JSONResponse:
    return ask(request, ListDiscrepancies())


@router.post(
    "/discrepancies/{discrepancy_id}/resolution",
    response_model=Data,
    tags=["discrepancy"],
    summary="Resolve with a reason (a witness signs when required)",
    dependencies=[Depends(Access(Privilege.RESOLVE_DISCREPANCY))],
)
async def resolve(discrepancy_id: PathId, body: ResolveBody, request: Request) -> JSONResponse:
    return await run(request, ResolveDiscrepancy(discrepancy_id, body.reason.value, body.note))


@router.post("/discrepancies/{discrepancy_id}/review", response_model=Data, tags=["discrepancy"], summary="Review")
async def review_discrepancy(
    discrepancy_id: PathId, request: Request, _: Reviewer, body: NoteBody | None = None
) -> JSONResponse:
    return await run(request, ReviewDiscrepancy(discrepancy_id, (body or NoteBody()).note))


# --- overrides -------------------------------------------------------------------------------------------------


@router.get("/override-reviews", response_model=Data, tags=["override"], summary="Overrides waiting for review")
async def override_reviews(request: Request, _: Reviewer) -> JSONResponse:
    return ask(request, ListOverrideReviews())


@router.post("/override-reviews/{review_id}", response_model=Data, tags=["override"], summary="Review an override")
async def review_override(
    review_id: PathNumber, body: OverrideReviewBody, request: Request, _: Reviewer
) -> JSONResponse:
    return await run(request, ReviewOverride(review_id, body.outcome, body.note))


# --- quarantine ------------------------------------------------------------------------------------------------


@router.get(
    "/quarantine",
    response_model=Data,
    tags=["quarantine"],
    summary="Lots still blocked, with where they sit",
    dependencies=[Depends(Access(Privilege.RESTOCK, Privilege.REVIEW))],
)
async def quarantines(request: Request) -> JSONResponse:
    return ask(request, ListQuarantines())


@router.post("/recalls", response_model=Data, tags=["quarantine"], summary="Recall a lot everywhere")
async def recall(body: RecallBody, request: Request, _: Reviewer) -> JSONResponse:
    return await run(request, RecallLot(body.ndc, body.lot_number, body.reason))


@router.post(
    "/quarantine/{quarantine_id}/review", response_model=Data, tags=["quarantine"], summary="Release or destroy"
)
async def review_quarantine(
    quarantine_id: PathNumber, body: QuarantineReviewBody, request: Request, _: Reviewer
) -> JSONResponse:
    return await run(request, ReviewQuarantine(quarantine_id, body.decision, body.reason.value, body.note))


@router.put(
    "/cabinet/critical-override",
    response_model=Data,
    tags=["admin"],
    summary="Turn critical-override mode on or off",
    dependencies=[Depends(Access(Privilege.ADMINISTER))],
)
async def critical_override(body: CriticalOverrideBody, request: Request) -> JSONResponse:
    return await run(request, SetCriticalOverride(body.enabled, body.reason))


# --- compartments ----------------------------------------------------------------------------------------------


@router.post(
    "/compartments/{compartment_id}/account",
    response_model=Data,
    tags=["devices"],
    summary="Account for a compartment found open or opened without authorisation",
    dependencies=[Depends(Access())],
)
async def account_for(compartment_id: PathId, request: Request, body: AccountBody | None = None) -> JSONResponse:
    return await run(request, AccountFor(compartment_id, (body or AccountBody()).counted))


@router.post(
    "/compartments/{compartment_id}/service",
    response_model=Data,
    tags=["devices"],
    summary="Return a jammed or faulted compartment to service after repair (it must shut and latch)",
    dependencies=[Depends(Access())],
)
async def service(compartment_id: PathId, request: Request) -> JSONResponse:
    return await run(request, ServiceCompartment(compartment_id))
