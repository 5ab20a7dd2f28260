"""The engine of one cabinet: the one door to its commands, queries and sensors.

Responsible for: running one command at a time under one lock (``execute``: the registry finds its handler; a
command other than login, tick and the refrigerator check needs a logged-in user, whose activity it is; an expected
refusal raised by a device or the store comes back as a result; when a command ends the session, every workflow
of that session is told, once); answering queries outside the lock (``query``); restoring the compartments from
the sensors and recovering the journal after a start (``restore``); and following sensor snapshots
(``handle_snapshot``; a read started before the engine's own latest unlock or relock is stale and dropped).

Not responsible for: any rule (the machines), any workflow (``handlers``), choosing parts (``controller.bootstrap``
through ``assembly``), or polling (``runner``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from controller.engine.commands.base import Answers, Returns
from controller.engine.commands.cabinet import Restored, SnapshotApplied
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, Payload, seqs
from controller.engine.sensing import SnapshotFollower
from controller.errors import (
    CommunicationError,
    ConfigurationError,
    DeviceFaultError,
    SafetyError,
    StorageError,
    VerificationError,
)
from controller.hardware.io_board.interface import BoardSnapshot

if TYPE_CHECKING:
    from controller.engine.handlers.session import SessionHandler

T = TypeVar("T", bound=Payload)
EXPECTED = (SafetyError, VerificationError, DeviceFaultError, CommunicationError, StorageError, ConfigurationError)


class CabinetEngine:
    sessions: SessionHandler  # set by ``assembly``: ends a session's workflows

    def __init__(self, ctx: EngineContext, follower: SnapshotFollower) -> None:
        self.ctx = ctx
        self._follower = follower
        self._lock = asyncio.Lock()

    @property
    def cabinet_id(self) -> str:
        return self.ctx.cabinet_id

    @property
    def actuations(self) -> int:
        return self.ctx.actuator.actuations

    async def execute(self, command: Returns[T]) -> CommandResult[T]:
        """Run one command. Expected refusals come back as results; anything raised is a bug."""
        async with self._lock:
            if self._follower.awaiting_read:
                await self.refresh()  # an opening the last read could not place: settle it before anything acts
            return await self._run(command)

    async def _run(self, command: Any) -> CommandResult[Any]:
        ctx = self.ctx
        run = ctx.registry.commands.get(type(command))
        if run is None:
            raise TypeError(f"no handler for {command!r}")
        session = ctx.session
        if type(command) not in ctx.registry.sessionless:
            if not session.is_active:
                return CommandResult.refuse("session.not_active", "nobody is logged in at this cabinet")
            ctx.recorder.commit(session.activity(now=ctx.now()))
        before = session.session_id if session.is_active else 0
        try:
            result = await run(command)
        except EXPECTED as error:
            result = CommandResult.from_error(error)
        if before and (not session.is_active or session.session_id != before):
            await self.sessions.end_workflows(before, "session_ended")
        return result

    def query(self, query: Answers[T]) -> CommandResult[T]:
        """Answer a query from the store and the workflows as they stand (no lock: queries only read)."""
        ask = self.ctx.registry.queries.get(type(query))
        if ask is None:
            raise TypeError(f"no handler for {query!r}")
        return ask(query)

    # --- sensors ------------------------------------------------------------------------------------------------

    async def restore(self) -> CommandResult[Restored]:
        """After a (re)start: rebuild every compartment from its sensors and recover the journal's workflows. A
        compartment found open is breached and blocks new unlocks until it is closed and accounted for."""
        async with self._lock:
            ctx = self.ctx
            try:
                snapshot = await ctx.actuator.io(ctx.devices.board.snapshot())
                done = self._follower.restore(snapshot)
                sealed = done.sealed + await ctx.settle(ctx.registry.restored(ctx.now()))
                await self._follower.acknowledge(done.acknowledge)
            except EXPECTED as error:
                return CommandResult.from_error(error)
            states = {c.id: c.state.value for c in ctx.compartments.by_id.values()}
            return CommandResult.done(Restored(tuple(ctx.compartments.unaccounted()), states, seqs(sealed)))

    async def handle_snapshot(
        self, snapshot: BoardSnapshot, *, actuations: int | None = None
    ) -> CommandResult[SnapshotApplied]:
        """Follow one snapshot. ``actuations``: ``self.actuations`` when the read started (the running loop's
        poller); a read from before the latest unlock or relock is dropped, since its stale "latched" would undo
        that unlock."""
        async with self._lock:
            if actuations is not None and actuations != self.actuations:
                return CommandResult.done(SnapshotApplied(0, stale=True))
            try:
                return CommandResult.done(SnapshotApplied(len(await self._follow(snapshot))))
            except EXPECTED as error:
                return CommandResult.from_error(error)

    async def poll(self) -> CommandResult[SnapshotApplied]:
        """Read one snapshot and act on it (tests and the benchmark; a running cabinet uses a ``BoardPoller``)."""
        try:
            snapshot = await self.ctx.actuator.io(self.ctx.devices.board.snapshot())
        except EXPECTED as error:
            return CommandResult.from_error(error)
        return await self.handle_snapshot(snapshot)

    async def refresh(self) -> None:
        """Inside a command: read the sensors once, so the compartments reflect what the person just did."""
        try:
            await self._follow(await self.ctx.actuator.io(self.ctx.devices.board.snapshot()))
        except (CommunicationError, DeviceFaultError):
            return  # a board that does not answer leaves the compartments as they were

    async def _follow(self, snapshot: BoardSnapshot) -> list[Any]:
        followed = await self._follower.follow(snapshot)
        return followed.sealed + await self._follower.settle(followed)
