"""A pull (removal of a dose for a patient) as a resource that moves through the engine's states: start it for a
patient, choose the item (order, override or non-profiled), enter the blind count (the drawer unlocks), scan the
package when required, record what was taken, or cancel before the drawer opens. The expected count is never
shown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, Principal
from controller.api.problems import ApiError
from controller.api.routing import PROBLEMS, Body, Data, Lax, engine_of, example, run
from controller.domain.policies import OverrideReason
from controller.domain.users import Privilege
from controller.engine.commands.pull import (
    CancelPull,
    EnterCount,
    GetPull,
    PullStep,
    ScanRemoved,
    SelectItem,
    StartPull,
    Take,
)

router = APIRouter(prefix="/api/v1/pulls", tags=["pull"], responses=PROBLEMS)

Caller = Annotated[Principal, Depends(Access(Privilege.REMOVE))]
PullId = Annotated[str, Path(min_length=1, max_length=64)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class StartBody(Body):
    model_config = example({"patient_id": "MRN100001"})
    patient_id: Id


class ItemBody(Body):
    """Against an order, or by override (item and reason), or in a non-profiled area by item alone."""

    model_config = example({"order_id": "ORD9001"})
    order_id: Id | None = None
    item_id: Id | None = None
    override_reason: Lax[OverrideReason] | None = None
    pocket_id: Id | None = None
    acknowledge_allergies: bool = False


class CountBody(Body):
    model_config = example({"count": 12})
    count: int = Field(ge=0, le=100_000, description="what the user sees in the pocket (blind: nothing is shown)")


class TakeBody(Body):
    model_config = example({"quantity": 1})
    quantity: int = Field(ge=0, le=1_000, description="what was taken; 0 when nothing was")


class ScanBody(Body):
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    by_camera: bool = Field(default=False, description="read the package from the cabinet's camera, not the scanner")


@router.post("", response_model=Data, summary="Start a pull for a patient")
async def start(body: StartBody, request: Request, _: Caller) -> JSONResponse:
    return await run(request, StartPull(body.patient_id))


@router.get("/{pull_id}", response_model=Data, summary="Where a pull stands")
async def show(pull_id: PullId, request: Request, caller: Caller) -> JSONResponse:
    return JSONResponse({"data": dict(_pull(request, pull_id, caller).pull)})


@router.post("/{pull_id}/item", response_model=Data, summary="Choose the item (and pocket)")
async def item(pull_id: PullId, body: ItemBody, request: Request, caller: Caller) -> JSONResponse:
    _pull(request, pull_id, caller)
    command = SelectItem(
        pull_id,
        order_id=body.order_id,
        item_id=body.item_id,
        override_reason=body.override_reason,
        pocket_id=body.pocket_id,
        acknowledge_allergies=body.acknowledge_allergies,
    )
    return await run(request, command)


@router.post("/{pull_id}/count", response_model=Data, summary="Enter the blind count; the pocket unlocks")
async def count(pull_id: PullId, body: CountBody, request: Request, caller: Caller) -> JSONResponse:
    _pull(request, pull_id, caller)
    return await run(request, EnterCount(pull_id, body.count))


@router.post("/{pull_id}/scan", response_model=Data, summary="Scan the removed package")
async def scan(pull_id: PullId, request: Request, caller: Caller, body: ScanBody | None = None) -> JSONResponse:
    _pull(request, pull_id, caller)
    chosen = body or ScanBody()
    return await run(request, ScanRemoved(pull_id, timeout_s=chosen.timeout_s, by_camera=chosen.by_camera))


@router.post("/{pull_id}/take", response_model=Data, summary="Record what was taken")
async def take(pull_id: PullId, body: TakeBody, request: Request, caller: Caller) -> JSONResponse:
    _pull(request, pull_id, caller)
    return await run(request, Take(pull_id, body.quantity))


@router.post("/{pull_id}/cancel", response_model=Data, summary="Cancel (only before the drawer opened)")
async def cancel(pull_id: PullId, request: Request, caller: Caller) -> JSONResponse:
    _pull(request, pull_id, caller)
    return await run(request, CancelPull(pull_id))


def _pull(request: Request, pull_id: str, caller: Principal) -> PullStep:
    """The caller's pull ``pull_id`` (another session's pulls are not found); the engine refuses a step of one
    that has ended."""
    found = engine_of(request).query(GetPull(pull_id)).payload
    if found is None or found.pull.get("session_id") != caller.session_id or found.pull.get("actor_id") != caller.id:
        raise ApiError("api.not_found", "no such pull in this session", pull_id=pull_id)
    return found
