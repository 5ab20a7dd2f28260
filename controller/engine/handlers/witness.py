"""The witness commands: begin, sign and cancel the one witness step of the session, over the witness desk.

Responsible for the commands and for the step's end with its session (the workflow it was for keeps its action).
Not responsible for the step itself (``witnessing.WitnessDesk``) or for what is witnessed (each workflow).
"""

from __future__ import annotations

from datetime import datetime

from controller.engine.commands.clinical import (
    BeginWitness,
    CancelWitness,
    ListPendingWastes,
    ListPendingWork,
    PendingWork,
    SignWitness,
    WitnessBegun,
    WitnessCancelled,
    WitnessFor,
    WitnessSigned,
)
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler, Reaction


class WitnessHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        ctx.registry.add(self)
        ctx.registry.command(BeginWitness, self.begin)
        ctx.registry.command(SignWitness, self.sign)
        ctx.registry.command(CancelWitness, self.cancel)
        ctx.registry.query(ListPendingWork, self.pending_work)

    async def begin(self, command: BeginWitness) -> CommandResult[WitnessBegun]:
        try:
            kind = WitnessFor(command.kind)
        except ValueError:
            return CommandResult.refuse("engine.no_workflow", f"nothing of kind {command.kind!r} waits for a witness")
        return self.ctx.witness.begin(kind, command.target_id)

    async def sign(self, command: SignWitness) -> CommandResult[WitnessSigned]:
        return await self.ctx.witness.sign(command.user_id, pin=command.pin, badge=command.badge)

    async def cancel(self, command: CancelWitness) -> CommandResult[WitnessCancelled]:
        result, reaction = self.ctx.witness.cancel()
        sealed = await self.ctx.settle(reaction)
        if result.payload is None:
            return result
        payload = result.payload
        return CommandResult.done(WitnessCancelled(payload.state, payload.cancelled, seqs(sealed)))

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        return self.ctx.witness.abandon(session_id, now)

    def pending_work(self, query: ListPendingWork) -> CommandResult[PendingWork]:
        """What ``user_id`` still owes: the pending-waste list and every action waiting for a witness."""
        wastes = self.ctx.registry.queries[ListPendingWastes](ListPendingWastes(query.user_id))
        listed = tuple(wastes.data.get("wastes", ()))
        return CommandResult.done(PendingWork(listed, tuple(self.ctx.registry.pending_for(query.user_id))))
