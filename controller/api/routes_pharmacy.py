"""Pharmacy work at the cabinet: the pick list, restock / load / unload of one pocket (unlock, blind count-back,
package scans over the scanner, finish), blind cycle and shift-change counts, and robot vial fills. The engine
keeps one of each in progress; ``current`` names it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, Principal
from controller.api.routing import PROBLEMS, Body, Data, Lax, ask, example, run
from controller.domain.users import Privilege
from controller.engine.commands.pharmacy import (
    CancelFill,
    CancelRestock,
    CountBack,
    EnterPocketCount,
    FinishRestock,
    ScanPackage,
    SecondCount,
    ShowPickList,
    SignRestockWitness,
    StartCount,
    StartFill,
    StartRestock,
    StopCount,
    UnlockCountPocket,
)
from controller.fsm.workflows.count import CountKind
from controller.fsm.workflows.restock import RestockKind

router = APIRouter(prefix="/api/v1", responses=PROBLEMS)

Restocker = Annotated[Principal, Depends(Access(Privilege.RESTOCK))]
Counter = Annotated[Principal, Depends(Access(Privilege.RESTOCK, Privilege.REMOVE))]
Id = Annotated[str, Field(min_length=1, max_length=64)]
PocketId = Annotated[str, Path(min_length=1, max_length=64)]
WorkflowId = Annotated[str, Path(min_length=1, max_length=64)]


class RestockBody(Body):
    """``quantity`` defaults to the pick list's; ``source`` is the chain-of-custody origin of controlled stock."""

    model_config = example({"pocket_id": "D1-P01", "quantity": 3})
    pocket_id: Id
    kind: Lax[RestockKind] = RestockKind.RESTOCK
    quantity: int | None = Field(default=None, ge=0, le=10_000)
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class CountValue(Body):
    model_config = example({"count": 5})
    count: int = Field(ge=0, le=100_000)


class ScanBody(Body):
    units: int = Field(default=1, ge=1, le=10_000, description="units in the scanned package")
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    by_camera: bool = Field(default=False, description="read the package from the cabinet's camera, not the scanner")


class WitnessBody(Body):
    user_id: Id
    pin: Annotated[str, Field(min_length=4, max_length=12, pattern=r"^[0-9]+$")] | None = None
    badge: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class CountBody(Body):
    """No ``pocket_ids``: every controlled pocket of the cabinet."""

    model_config = example({"kind": "shift_change_count"})
    kind: Lax[CountKind] = CountKind.SHIFT_CHANGE
    pocket_ids: list[Id] | None = Field(default=None, min_length=1, max_length=500)


class FillBody(Body):
    model_config = example(
        {"item_id": "OXYCODONE-5MG-TAB", "quantity": 30, "rx_number": "RX1001", "patient_label": "J. Doe"}
    )
    item_id: Id
    quantity: int = Field(ge=1, le=1_000)
    rx_number: Annotated[str, Field(min_length=1, max_length=32)]
    patient_label: Annotated[str, Field(min_length=1, max_length=100)]
    canister: int | None = Field(default=None, ge=1, le=1_000)
    timeout_s: float = Field(default=30.0, gt=0, le=120)


class TimeoutBody(Body):
    timeout_s: float = Field(default=30.0, gt=0, le=120)


# --- restock ---------------------------------------------------------------------------------------------------


@router.get(
    "/restock/pick-list",
    response_model=Data,
    tags=["restock"],
    summary="Pockets at or below minimum, with the quantity back to par",
    dependencies=[Depends(Access(Privilege.RESTOCK, Privilege.REVIEW, scope="inventory:read"))],
)
async def show_pick_list(request: Request) -> JSONResponse:
    return ask(request, ShowPickList())


@router.post("/restocks", response_model=Data, tags=["restock"], summary="Start restocking a pocket (it unlocks)")
async def start_restock(body: RestockBody, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, StartRestock(body.pocket_id, body.kind, body.quantity, body.source))


@router.post("/restocks/{restock_id}/count-back", response_model=Data, tags=["restock"], summary="Blind count-back")
async def count_back(restock_id: WorkflowId, body: CountValue, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, CountBack(restock_id, body.count))


@router.post("/restocks/{restock_id}/scan", response_model=Data, tags=["restock"], summary="Scan the next package")
async def scan_package(
    restock_id: WorkflowId, request: Request, _: Restocker, body: ScanBody | None = None
) -> JSONResponse:
    body = body or ScanBody()
    return await run(request, ScanPackage(restock_id, body.units, body.timeout_s, by_camera=body.by_camera))


@router.post("/restocks/{restock_id}/witness", response_model=Data, tags=["restock"], summary="Witness a restock")
async def witness_restock(restock_id: WorkflowId, body: WitnessBody, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, SignRestockWitness(restock_id, body.user_id, pin=body.pin, badge=body.badge))


@router.post("/restocks/{restock_id}/finish", response_model=Data, tags=["restock"], summary="Finish the restock")
async def finish_restock(restock_id: WorkflowId, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, FinishRestock(restock_id))


@router.post("/restocks/{restock_id}/cancel", response_model=Data, tags=["restock"], summary="Cancel the restock")
async def cancel_restock(restock_id: WorkflowId, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, CancelRestock(restock_id))


# --- counts ----------------------------------------------------------------------------------------------------


@router.post("/counts", response_model=Data, tags=["count"], summary="Start a blind count")
async def start_count(body: CountBody, request: Request, _: Counter) -> JSONResponse:
    pockets = tuple(body.pocket_ids) if body.pocket_ids is not None else None
    return await run(request, StartCount(body.kind, pockets))


@router.post(
    "/counts/{count_id}/pockets/{pocket_id}", response_model=Data, tags=["count"], summary="Enter one pocket's count"
)
async def enter_count(
    count_id: WorkflowId, pocket_id: PocketId, body: CountValue, request: Request, _: Counter
) -> JSONResponse:
    return await run(request, EnterPocketCount(count_id, pocket_id, body.count))


@router.post("/counts/{count_id}/unlock", response_model=Data, tags=["count"], summary="Unlock the next pocket again")
async def unlock_next(count_id: WorkflowId, request: Request, _: Counter) -> JSONResponse:
    return await run(request, UnlockCountPocket(count_id))


@router.post("/counts/{count_id}/stop", response_model=Data, tags=["count"], summary="Stop the count")
async def stop_count(count_id: WorkflowId, request: Request, _: Counter) -> JSONResponse:
    return await run(request, StopCount(count_id))


# --- robot fill ------------------------------------------------------------------------------------------------


@router.post("/fills", response_model=Data, tags=["fill"], summary="Fill a vial on the counter or robot")
async def start_fill(body: FillBody, request: Request, _: Restocker) -> JSONResponse:
    command = StartFill(body.item_id, body.quantity, body.rx_number, body.patient_label, body.canister, body.timeout_s)
    return await run(request, command)


@router.post("/fills/{fill_id}/second-count", response_model=Data, tags=["fill"], summary="Schedule II recount")
async def second_count(
    fill_id: WorkflowId, request: Request, _: Restocker, body: TimeoutBody | None = None
) -> JSONResponse:
    return await run(request, SecondCount(fill_id, (body or TimeoutBody()).timeout_s))


@router.post("/fills/{fill_id}/cancel", response_model=Data, tags=["fill"], summary="Cancel the fill")
async def cancel_fill(fill_id: WorkflowId, request: Request, _: Restocker) -> JSONResponse:
    return await run(request, CancelFill(fill_id))
