"""The cabinet's own layout and policy from the central, handed to the cabinet's engine (``Configure`` for the
forwarder): the engine checks, applies and records them under its lock, as it does an administrator's change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from controller.domain.directory import DownlinkDocument
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import ApplyCentralConfiguration
from controller.fleet.forwarder import Configure


def through_engine(engine: Callable[[], Awaitable[CabinetEngine]]) -> Configure:
    """``engine`` gives the running engine (waiting for it while the cabinet starts)."""

    async def configure(document: DownlinkDocument) -> str:
        running = await engine()
        result = await running.execute(ApplyCentralConfiguration(document.kind, document.version, document.content))
        if not result.ok:
            return "refused"
        return "same" if result.unwrap().values.get("same") else "applied"

    return configure
