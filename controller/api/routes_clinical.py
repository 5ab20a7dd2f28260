"""After a pull: waste (whole or partial, reason code, witness for controlled substances, or deferred to the
pending list) and returns (to the return bin, or a sealed non-controlled item to its pocket when allowed). The
witness signs through ``/api/v1/cabinet/session/witness``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, Principal
from controller.api.routing import PROBLEMS, Body, Data, Lax, ask, example, run
from controller.domain.users import Privilege
from controller.engine.commands.clinical import (
    CancelReturn,
    ConfirmReturn,
    DeferWaste,
    ListPendingWastes,
    ReturnDose,
    WasteDose,
)
from controller.fsm.workflows.returns import ReturnDestination
from controller.fsm.workflows.waste import WasteReason

router = APIRouter(prefix="/api/v1", responses=PROBLEMS)

Caller = Annotated[Principal, Depends(Access(Privilege.REMOVE))]
Id = Annotated[str, Field(min_length=1, max_length=64)]
ReturnId = Annotated[str, Path(min_length=1, max_length=64)]


class WasteBody(Body):
    """Of the pull ``pull_id`` or of the pending waste ``waste_id`` (one of the two). The amount is in the dose
    unit (mg, mL, units ...), not in packages."""

    model_config = example({"amount": "0.5", "unit": "mg", "reason": "partial_dose"})
    amount: Annotated[Decimal, Field(strict=False, gt=0, max_digits=12, decimal_places=4)]
    unit: Annotated[str, Field(min_length=1, max_length=20)]
    reason: Lax[WasteReason]
    note: Annotated[str, Field(max_length=500)] | None = None
    pull_id: Id | None = None
    waste_id: Id | None = None


class DeferBody(Body):
    pull_id: Id


class ReturnBody(Body):
    model_config = example({"pull_id": "PULL-0123456789ab", "quantity": 1, "destination": "return_bin"})
    quantity: int = Field(ge=1, le=1_000)
    pull_id: Id
    destination: Lax[ReturnDestination] = ReturnDestination.RETURN_BIN
    sealed: bool = False


@router.post("/wastes", response_model=Data, tags=["waste"], summary="Waste a removed dose")
async def waste(body: WasteBody, request: Request, _: Caller) -> JSONResponse:
    command = WasteDose(body.amount, body.unit, body.reason.value, body.note, pull_id=body.pull_id,
                        waste_id=body.waste_id)  # fmt: skip
    return await run(request, command)


@router.post("/wastes/deferred", response_model=Data, tags=["waste"], summary="Put a waste on the pending list")
async def defer(body: DeferBody, request: Request, _: Caller) -> JSONResponse:
    return await run(request, DeferWaste(body.pull_id))


@router.get("/wastes/pending", response_model=Data, tags=["waste"], summary="The user's pending wastes")
async def pending(request: Request, caller: Caller) -> JSONResponse:
    return ask(request, ListPendingWastes(caller.id))


@router.post("/returns", response_model=Data, tags=["return"], summary="Return a removed dose")
async def return_dose(body: ReturnBody, request: Request, _: Caller) -> JSONResponse:
    return await run(request, ReturnDose(body.pull_id, body.quantity, body.destination.value, body.sealed))


@router.post("/returns/{return_id}/confirm", response_model=Data, tags=["return"], summary="The dose is back")
async def confirm_return(return_id: ReturnId, request: Request, _: Caller) -> JSONResponse:
    return await run(request, ConfirmReturn(return_id))


@router.post("/returns/{return_id}/cancel", response_model=Data, tags=["return"], summary="Cancel a return")
async def cancel_return(return_id: ReturnId, request: Request, _: Caller) -> JSONResponse:
    return await run(request, CancelReturn(return_id))
