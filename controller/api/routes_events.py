"""``/api/v1/events``: a WebSocket of what happens at the cabinet (ledger entries as they commit: drawers opened
and closed, alarms, discrepancies, doses; refrigerator and power readings; the I/O board link). One JSON object per
message. Authenticated like every route (a browser offers the subprotocols ``adc.bearer, <token>``); a cabinet
token's stream closes when its session ends."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from controller.api.access import BEARER_SUBPROTOCOL, Access, Principal, runtime_of
from controller.api.runtime import ApiRuntime
from controller.engine.commands.session import GetSession

router = APIRouter(tags=["events"])

SESSION_CHECK_S = 1.0
CLOSE_SESSION_ENDED = 4401  # application close code: the token's session ended


@router.websocket("/api/v1/events")
async def events(
    websocket: WebSocket, caller: Annotated[Principal, Depends(Access(scope="events:read", activity=False))]
) -> None:
    runtime = runtime_of(websocket)
    offered = websocket.headers.get("sec-websocket-protocol", "")
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)
    hello = {"type": "hello", "cabinet_id": runtime.cabinet_id, "subscriber": caller.id}
    await websocket.send_json(hello)
    async with runtime.events.subscribe() as queue:
        closed = asyncio.create_task(_wait_closed(websocket))
        try:
            while not closed.done():
                try:
                    event = await asyncio.wait_for(queue.get(), SESSION_CHECK_S)
                except TimeoutError:
                    event = None
                if caller.kind == "cabinet" and not _session_alive(runtime, caller):
                    await websocket.close(CLOSE_SESSION_ENDED, "session ended")
                    return
                if event is not None:
                    await websocket.send_json(event)
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await closed


async def _wait_closed(websocket: WebSocket) -> None:
    """Clients send nothing; reading is how a disconnect is noticed."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


def _session_alive(runtime: ApiRuntime, caller: Principal) -> bool:
    engine = runtime.engine
    session = engine.query(GetSession()).payload if engine is not None else None
    return bool(session and session.is_active and session.session_id == caller.session_id)
