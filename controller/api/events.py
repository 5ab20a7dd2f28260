"""The event stream behind ``/api/v1/events``: what happened at the cabinet, as it happens.

Responsible for: following the ledger (every committed entry of this cabinet, in order, whoever wrote it: the
engine, the running loop, another process) and publishing a summary of each; publishing the refrigerator and power
readings of the latest sensor snapshot when they change; and the I/O board link going down or coming back. Each
subscriber has a bounded queue; a subscriber too slow to keep up loses the oldest events and is told how many.

Why the ledger and not a hook in the engine: only committed entries are published (a rolled-back one never is),
nothing written by another module is missed, and the engine stays unaware of the API. Summaries carry no patient
id and no note: a screen that needs more asks the API with its own token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from controller.api.temperature_history import TemperatureHistory
from controller.hardware.poller import PollFailure, PollSuccess
from controller.hardware.tasks import cancel_and_wait
from controller.store.queries.ledger_reads import entries_after, last_seq

if TYPE_CHECKING:
    from controller.api.runtime import ApiRuntime

log = logging.getLogger("controller.api")

QUEUE_SIZE = 256
LEDGER_PERIOD_S = 0.2
_CATEGORIES = (
    ("drawer.", "drawer"),
    ("environment.", "alarm"),
    ("device.", "alarm"),
    ("discrepancy.", "discrepancy"),
    ("session.", "session"),
    ("dose.", "dose"),
    ("stock.", "stock"),
    ("count.", "count"),
)


def ledger_event(body: str) -> dict[str, Any]:
    entry = json.loads(body)
    event_type: str = entry["event_type"]
    details = entry.get("details", {})
    return {
        "type": "ledger",
        "category": next((name for prefix, name in _CATEGORIES if event_type.startswith(prefix)), "other"),
        "seq": entry["seq"],
        "event_type": event_type,
        "kind": details.get("kind"),
        "recorded_at": entry["recorded_at"],
        "actor_id": entry.get("actor_id"),
        "item_id": entry.get("item_id"),
        "pocket_id": entry.get("pocket_id"),
        "quantity_change": entry.get("quantity_change"),
        "reason_code": entry.get("reason_code"),
        "is_simulator": entry.get("is_simulator"),
    }


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.temperatures = TemperatureHistory()  # for the console's chart (GET /api/v1/devices/temperature)

    def start(self, runtime: ApiRuntime) -> None:
        self._tasks = [
            asyncio.create_task(self._follow_ledger(runtime), name="events:ledger"),
            asyncio.create_task(self._follow_sensors(runtime), name="events:sensors"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        self.published += 1
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                lost = {"type": "lagged", "detail": "events were dropped: this client read too slowly"}
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(lost)
                if queue.full():
                    queue.get_nowait()
            queue.put_nowait(event)

    async def _follow_ledger(self, runtime: ApiRuntime) -> None:
        with runtime.db.read() as session:
            last = last_seq(session, runtime.cabinet_id)
        while True:
            await asyncio.sleep(LEDGER_PERIOD_S)
            try:
                with runtime.db.read() as session:
                    found = entries_after(session, runtime.cabinet_id, last, limit=500)
            except Exception:  # the stream must outlive a busy or briefly unreachable store
                log.exception("reading the ledger for the event stream failed")
                continue
            for entry in found:
                last = entry.seq
                self.publish(ledger_event(entry.body))

    async def _follow_sensors(self, runtime: ApiRuntime) -> None:
        runner = runtime.runner
        assert runner is not None
        shown: tuple[Any, ...] | None = None
        link_ok: bool | None = None
        async with runner.poller.subscribe() as next_result:
            while True:
                result = await next_result()
                if isinstance(result, PollFailure):
                    if link_ok is not False:
                        link_ok = False
                        self.publish({"type": "device", "device": "io_board", "ok": False, "code": result.error.code})
                    continue
                assert isinstance(result, PollSuccess)
                if link_ok is False:
                    self.publish({"type": "device", "device": "io_board", "ok": True, "code": None})
                link_ok = True
                environment = result.snapshot.snapshot.environment
                reading = (
                    round(environment.temperature_c, 1),
                    round(environment.humidity_pct),
                    environment.fridge_door_open,
                    environment.mains_present,
                    environment.on_ups,
                )
                if reading != shown:
                    shown = reading
                    self.temperatures.add(runtime.clock.now(), reading[0])
                    self.publish(
                        {
                            "type": "environment",
                            "temperature_c": reading[0],
                            "humidity_pct": reading[1],
                            "fridge_door_open": reading[2],
                            "mains_present": reading[3],
                            "on_ups": reading[4],
                        }
                    )
