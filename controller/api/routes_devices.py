"""The devices: who each says it is (firmware, simulator or real) as reported over the wire, the I/O board's live
state from the running loop (latest snapshot, read failures, fault bits seen), the compartments' states, and, on a
simulated cabinet only, the simulators' physical-world control socket (a person opens a drawer, the fridge warms).
Nothing here talks to the I/O board itself: the running loop already reads it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from controller.api.access import Access, runtime_of
from controller.api.problems import ApiError, to_json
from controller.api.routing import PROBLEMS, Body, Data, example
from controller.domain.transactions import EventType
from controller.engine.commands.cabinet import GetCabinetStatus, GetRules
from controller.hardware.poller import PollFailure, PollSuccess
from controller.store.queries.inventory_reads import refrigerator_drawers
from controller.store.queries.ledger_reads import latest_bodies

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=PROBLEMS)

Reader = Depends(Access(scope="devices:read", activity=False))
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
FAULTED = ("jammed", "fault")


class SimulatorAction(Body):
    model_config = example({"device": "io_board", "action": "open_drawer", "args": {"drawer": 2}})
    device: Name
    action: Name
    args: dict[str, int | float | str | bool] = Field(default_factory=dict, max_length=8)


@router.get(
    "", response_model=Data, summary="Every device, the board's live state, the compartments", dependencies=[Reader]
)
async def devices(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    engine = runtime.require_engine()
    hardware, runner = runtime.hardware, runtime.runner
    assert hardware is not None and runner is not None
    status = engine.query(GetCabinetStatus()).unwrap()
    latest = runner.poller.latest
    board: dict[str, Any] = {"reads": runner.poller.reads, "failures": runner.poller.failures}
    if isinstance(latest, PollSuccess):
        snapshot = latest.snapshot.snapshot
        board |= {
            "link": "ok",
            "faults": sorted(snapshot.faults),
            "door_open": snapshot.door_open,
            "tamper": snapshot.tamper,
            "supply_voltage_v": snapshot.supply_voltage_v,
            "is_simulator": snapshot.is_simulator,
            "environment": to_json(dataclasses.asdict(snapshot.environment)),
        }
    elif isinstance(latest, PollFailure):
        board |= {"link": "failing", "code": latest.error.code, "detail": latest.error.detail}
    else:
        board["link"] = "not read yet"
    data = {
        "cabinet_id": runtime.cabinet_id,
        "is_simulator": hardware.is_simulator,
        "devices": [
            {
                "device": r.device,
                "url": r.url,
                "connected": r.connected,
                "is_simulator": r.is_simulator,
                "identity": r.identity,
                "error": r.error,
            }
            for r in hardware.reports
        ],
        "io_board": board,
        "compartments": dict(status.compartments),
        "critical_override_mode": status.critical_override_mode,
        "board_protocol": status.board_protocol,
        "live_workflows": list(status.live_workflows),
        "simulator_control": runtime.api.sim_control is not None,
    }
    return JSONResponse({"data": data})


@router.get("/faults", response_model=Data, summary="Faults to acknowledge or service", dependencies=[Reader])
async def faults(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    engine = runtime.require_engine()
    runner = runtime.runner
    assert runner is not None
    health = runner.health
    status = engine.query(GetCabinetStatus()).unwrap()
    data = {
        "board_faults_seen": list(health.board_faults),
        "poll_failures": health.poll_failures,
        "last_poll_error": health.last_poll_error.code if health.last_poll_error else None,
        "compartments": [
            {"compartment_id": compartment, "state": state}
            for compartment, state in status.compartments.items()
            if state in FAULTED
        ],
        "unaccounted": list(status.unaccounted),
        "devices_not_answering": [r.device for r in runtime.hardware.reports if r.error] if runtime.hardware else [],
    }
    return JSONResponse({"data": data})


@router.get(
    "/temperature",
    response_model=Data,
    summary="The refrigerator's recent temperatures and its recorded excursions",
    description="Readings kept since the API started (a point at most every 30 s while steady, every move of 0.3 °C "
    "or across the band at once), the band of the rules in force (2-8 °C by default), the refrigerated drawers "
    "the sensor serves, and the last 50 ``environment.temperature_excursion`` ledger entries.",
    dependencies=[Reader],
)
async def temperature(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    rules = runtime.require_engine().query(GetRules()).unwrap()  # 503 until the cabinet is ready
    band = rules.document["refrigerator"]
    latest = runtime.runner.poller.latest if runtime.runner else None
    current = latest.snapshot.snapshot.environment.temperature_c if isinstance(latest, PollSuccess) else None
    with runtime.db.read() as session:
        bodies = latest_bodies(session, runtime.cabinet_id, EventType.TEMPERATURE_EXCURSION.value, limit=50)
        refrigerators = refrigerator_drawers(session, runtime.cabinet_id)
    excursions = [_excursion(json.loads(body)) for body in bodies]
    data = {
        "now": runtime.clock.now().isoformat(),
        "band_c": [band["low_c"], band["high_c"]],
        "refrigerators": refrigerators,
        "current_c": None if current is None else round(current, 1),
        "readings": runtime.events.temperatures.points(),
        "excursions": excursions[::-1],
    }
    return JSONResponse({"data": data})


def _excursion(entry: dict[str, Any]) -> dict[str, Any]:
    details = entry.get("details", {})
    return {
        "seq": entry["seq"],
        "recorded_at": entry["recorded_at"],
        "since": details.get("since"),
        "minutes": details.get("minutes"),
        "temperature_c": details.get("temperature_c"),
        "worst_c": details.get("worst_c"),
    }


@router.post(
    "/simulator/actions",
    response_model=Data,
    summary="Act on the simulated cabinet (simulators only)",
    description="Forwards one action to the simulators' physical-world control socket: a person opening a drawer, "
    "lifting a lid, presenting a barcode. Refused with api.simulator_control_unavailable on real hardware.",
    dependencies=[Depends(Access())],
)
async def simulator_action(body: SimulatorAction, request: Request) -> JSONResponse:
    endpoint = runtime_of(request).api.sim_control
    if endpoint is None:
        raise ApiError("api.simulator_control_unavailable", "this cabinet runs on real hardware (no ADC_SIM_CONTROL)")
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(json.dumps(body.model_dump()).encode() + b"\n")
                await writer.drain()
                answer = json.loads(await reader.readline())
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError) as exc:
        raise ApiError(
            "comm.disconnected", f"the simulator control socket did not answer ({type(exc).__name__})"
        ) from exc
    if not answer.get("ok"):
        raise ApiError("api.validation", str(answer.get("error", "the simulator refused the action")))
    return JSONResponse({"data": {"result": to_json(answer.get("result"))}})
