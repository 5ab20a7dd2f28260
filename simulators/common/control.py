"""The physical-world control surface: a person or physics acting on the simulated cabinet.

In process, tests call the models directly. Over the wire, a small JSON-lines TCP server on 127.0.0.1 takes one
request per line, ``{"device": "io_board", "action": "open_drawer", "args": {"drawer": 2}}``, and answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. Devices register their actions by name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

Action = Callable[..., Any]


class ControlSurface:
    def __init__(self) -> None:
        self._actions: dict[str, dict[str, Action]] = {}
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    def register(self, device: str, actions: dict[str, Action]) -> None:
        self._actions.setdefault(device, {}).update(actions)

    def devices(self) -> dict[str, list[str]]:
        return {device: sorted(actions) for device, actions in self._actions.items()}

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        device, action = request.get("device"), request.get("action")
        args = request.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": "args must be an object"}
        handler = self._actions.get(str(device), {}).get(str(action))
        if handler is None:
            return {"ok": False, "error": f"unknown action {device}.{action}; known: {self.devices()}"}
        try:
            return {"ok": True, "result": handler(**args)}
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end the open connections: a client that stays connected must not hold the close up
        (from Python 3.12 ``wait_closed`` waits for every connection), nor be cut off later by the loop's end."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    answer = (
                        self.dispatch(request)
                        if isinstance(request, dict)
                        else {"ok": False, "error": "send a JSON object"}
                    )
                except json.JSONDecodeError as exc:
                    answer = {"ok": False, "error": f"not JSON: {exc}"}
                writer.write(json.dumps(answer, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # close() cancels connection tasks; on Python 3.11 a connection task that ends cancelled makes asyncio's
            # stream callback log a spurious error, so this top-level task ends normally instead.
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
