"""The cabinet's own layout and policy from the central, handed to the cabinet's engine (``Configure`` for the
forwarder): the engine checks, applies and records them under its lock, as it does an administrator's change. A
layout refused only because a pocket is busy comes back ``waiting``: the forwarder offers it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from controller.domain.directory import DownlinkDocument
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import ApplyCentralConfiguration
from controller.fleet.forwarder import WAITING, Configure

MAY_PASS_LATER = frozenset({"fleet.layout_pocket_busy"})  # the pocket is unloaded, the workflow ends, the count is done


def through_engine(engine: Callable[[], Awaitable[CabinetEngine]]) -> Configure:
    """``engine`` gives the running engine (waiting for it while the cabinet starts)."""

    async def configure(document: DownlinkDocument, retry: bool) -> str:
        running = await engine()
        command = ApplyCentralConfiguration(document.kind, document.version, document.content, retry=retry)
        result = await running.execute(command)
        if not result.ok:
            return WAITING if result.code in MAY_PASS_LATER else "refused"
        return "same" if result.unwrap().values.get("same") else "applied"

    return configure
