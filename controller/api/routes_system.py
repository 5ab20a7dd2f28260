"""Liveness, readiness and metrics: open to anyone who can reach the port (they carry no patient data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from controller.api.access import runtime_of
from controller.api.metrics import CONTENT_TYPE_LATEST
from controller.api.routing import PROBLEMS, Data

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Data, summary="The process runs")
async def health() -> JSONResponse:
    return JSONResponse({"data": {"status": "ok"}})


@router.get(
    "/ready",
    response_model=Data,
    summary="The cabinet is ready: hardware connected and compartments restored from the sensors",
    responses={503: PROBLEMS[503]},
)
async def ready(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    runtime.require_engine()
    hardware = runtime.hardware
    return JSONResponse(
        {
            "data": {
                "status": "ready",
                "cabinet_id": runtime.cabinet_id,
                "is_simulator": bool(hardware and hardware.is_simulator),
            }
        }
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(runtime_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
