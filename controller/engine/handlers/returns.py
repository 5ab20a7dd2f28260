"""Returns at the cabinet: a removed dose that was not given goes back.

Responsible for: ``ReturnDose`` from what a pull removed (less what was already returned; a pull with a waste
recorded or owed, or entered and waiting for its witness, is not returned); the return bin by default: a stock
movement (``dose.returned``, +units) into the return-bin pocket, lot by lot as removed. The return bin is
modelled as a one-way chute: nothing is unlocked for it (what goes in cannot be taken out at the cabinet; pharmacy
opens it with its own key), so the deposit is recorded when the return is chosen (and witnessed). The original
pocket only for a sealed, non-controlled item when ``FsmSettings.return_sealed_to_pocket`` allows: its compartments
are unlocked through the actuator with a grant for the return (journaled first), and the deposit is recorded on
``ConfirmReturn``; a cancel relocks them.
A controlled return is witnessed when the policy lists ``CONTROLLED_RETURN``; one waiting for its witness survives
a logoff and a restart (journaled), on the user's pending work. A return whose pocket was unlocked and never
confirmed, when its session ends or the controller restarts, is an undocumented access of that pocket.

Not responsible for: the rules (``controller.fsm.workflows.returns``), billing credit, pharmacy's count of the bin.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from controller.domain.topology import DrawerKind
from controller.engine.commands.clinical import (
    CancelReturn,
    ConfirmReturn,
    ReturnDose,
    ReturnStep,
    WitnessFor,
)
from controller.engine.context import EngineContext
from controller.engine.recording import Deposit, JournalEnd, JournalWrite
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import CompartmentEvent, CompartmentEventKind, Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.workflows.returns import (
    RETURN_WITNESS,
    Return,
    ReturnDestination,
    ReturnItem,
    Returns,
    ReturnState,
)
from controller.store.cabinet_store import JournalEntry, Removal
from controller.store.ledger import SealedEntry

KIND = JournalKind.RETURN.value
R = ReturnState
FINISHED = frozenset({R.DONE, R.CANCELLED, R.UNDOCUMENTED})


class ReturnHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.returns = Returns(ctx.rules.policy, ctx.rules.machines)
        self.removal_of: dict[str, Removal] = {}
        self.session_of: dict[str, int] = {}
        self.opened: set[str] = set()  # returns whose pocket was opened for them
        bins = ctx.topology.pockets_of_kind(DrawerKind.RETURN_BIN)
        self.bin_pocket_id: str | None = bins[0] if bins else None
        r = ctx.registry
        r.add(self)
        r.command(ReturnDose, self.start)
        r.command(ConfirmReturn, self.confirm)
        r.command(CancelReturn, self.cancel)
        ctx.witness.add_target(WitnessFor.RETURN, self)

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.returns.by_id

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        waiting = [r for r in self.returns.by_id.values() if r.state is R.AWAITING_WITNESS and r.actor.id == user_id]
        return [{"kind": WitnessFor.RETURN.value, "target_id": r.id, "action": RETURN_WITNESS} for r in waiting]

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, **r.view()} for r in self.returns.by_id.values() if r.state not in FINISHED]

    # --- commands -----------------------------------------------------------------------------------------------

    async def start(self, command: ReturnDose) -> CommandResult[ReturnStep]:
        ctx = self.ctx
        user = ctx.user()
        with ctx.store.read() as reader:
            removal = reader.removal(command.pull_id)
            medication = reader.medication(removal.item_id) if removal is not None else None
            # a waste entered and waiting for its witness is owed (its row) before any entry names the pull
            owed = removal is not None and any(w.removed_seq == removal.first_seq for w in reader.owed_wastes())
        refusal = self._refusal(command.pull_id, removal, user.id, owed=owed)
        if refusal is not None:
            return refusal
        assert removal is not None and medication is not None
        try:
            destination = ReturnDestination(command.destination)
        except ValueError:
            return CommandResult.refuse("workflow.return_to_pocket_refused", f"unknown destination "
                                        f"{command.destination!r}", destination=command.destination)  # fmt: skip
        if destination is ReturnDestination.RETURN_BIN and self.bin_pocket_id is None:
            return CommandResult.refuse("engine.no_return_bin", "this cabinet has no return bin")
        item = ReturnItem(
            medication=medication,
            quantity_removed=removal.remaining,
            origin_pocket_id=removal.pocket_id,
            return_bin_pocket_id=self.bin_pocket_id or "",
            sealed=command.sealed,
            lot_number=removal.parts[0][0],
            patient_id=removal.patient_id,
            order_id=removal.order_id,
            pull_id=removal.pull_id,
        )
        self.returns.policy, self.returns.settings = ctx.rules.policy, ctx.rules.machines
        ret = self.returns.start(f"R-{uuid.uuid4().hex[:10]}", actor=user, item=item)
        self.removal_of[ret.id] = removal
        self.session_of[ret.id] = ctx.session.session_id
        decision = ret.choose(now=ctx.now(), quantity=command.quantity, destination=destination)
        if decision.refused:
            ctx.recorder.commit(decision)
            self._drop(ret)
            return self._result(ret, decision, [])
        if ret.state is R.AWAITING_WITNESS:
            sealed = ctx.recorder.commit(decision, journal=[self._journal(ret)])
            begun = ctx.witness.begin(WitnessFor.RETURN, ret.id)
            if begun.payload is None:  # no step opened (another is open): it waits, on the pending work
                return begun.refusal().with_payload(ReturnStep(ret.state.value, ret.view(), ret.id, seqs(sealed)))
            return self._result(ret, decision, sealed, witness_step=begun.payload.witness_step)
        ctx.recorder.commit(decision)
        return await self._ready(ret)

    def _refusal(
        self, pull_id: str, removal: Removal | None, user_id: str, *, owed: bool = False
    ) -> CommandResult[Any] | None:
        if removal is None:
            return CommandResult.refuse("engine.no_removal", f"pull {pull_id} removed nothing", pull=pull_id)
        if removal.actor_id != user_id:
            return CommandResult.refuse("workflow.not_owner", f"pull {pull_id} was {removal.actor_id}'s, not "
                                        f"{user_id}'s", pull=pull_id)  # fmt: skip
        if removal.remaining <= 0 or removal.wasted or owed:
            return CommandResult.refuse("engine.nothing_left", f"what pull {pull_id} removed is already returned "
                                        "or has a waste recorded or owed", pull=pull_id)  # fmt: skip
        live = (r for r in self.returns.by_id.values() if r.state in (R.AWAITING_WITNESS, R.READY))
        if any(r.item.pull_id == pull_id for r in live):
            return CommandResult.refuse("engine.nothing_left", f"a return of pull {pull_id} is already in progress")
        return None

    async def _ready(self, ret: Return) -> CommandResult[ReturnStep]:
        """Chosen (and witnessed): into the bin now, or unlock the original pocket and wait for the confirm."""
        if ret.destination is ReturnDestination.RETURN_BIN:
            return self._deposit(ret)
        ctx = self.ctx
        pocket_id = ret.item.origin_pocket_id
        with ctx.store.read() as reader:
            ret.expected_on_hand = reader.on_hand(pocket_id)
        unlocked = await ctx.actuator.unlock(pocket_id, workflow_id=ret.id, purpose=KIND, journal=[self._journal(ret)])
        if not unlocked.ok:
            cancelled = ret.cancel(now=ctx.now())
            sealed = list(unlocked.sealed) + ctx.recorder.commit(cancelled, journal=[self._journal(ret)])
            payload = ReturnStep(ret.state.value, ret.view(), ret.id, seqs(sealed))
            if unlocked.error is not None:
                return CommandResult.from_error(unlocked.error, payload, return_id=ret.id)
            assert unlocked.refusal is not None
            return CommandResult.refused(unlocked.refusal, payload)
        return CommandResult.done(ReturnStep(ret.state.value, ret.view(), ret.id, seqs(unlocked.sealed),
                                             unlocked=pocket_id))  # fmt: skip

    async def confirm(self, command: ConfirmReturn) -> CommandResult[ReturnStep]:
        ret = self._mine(command.return_id)
        if isinstance(ret, CommandResult):
            return ret
        if ret.destination is not ReturnDestination.ORIGINAL_POCKET:
            return CommandResult.refuse("engine.no_workflow", f"no return {command.return_id} to the pocket")
        result = self._deposit(ret)
        await self.ctx.actuator.release(ret.id)
        return result

    async def cancel(self, command: CancelReturn) -> CommandResult[ReturnStep]:
        ret = self._mine(command.return_id)
        if isinstance(ret, CommandResult):
            return ret
        decision = ret.cancel(now=self.ctx.now())
        sealed = self.ctx.recorder.commit(decision, journal=[self._journal(ret)])
        sealed += await self.ctx.actuator.release(ret.id)
        return self._result(ret, decision, sealed)

    def _mine(self, return_id: str) -> Return | CommandResult[Any]:
        ret = self.returns.by_id.get(return_id)
        user = self.ctx.session.user
        if ret is None or ret.state in FINISHED:
            return CommandResult.refuse("engine.no_workflow", f"no return {return_id} in progress")
        if user is None or ret.actor.id != user.id:
            return CommandResult.refuse("workflow.not_owner", f"return {return_id} is {ret.actor.id}'s")
        return ret

    # --- the witness step ---------------------------------------------------------------------------------------

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        ret = self._mine(target_id)
        if isinstance(ret, CommandResult):
            return ret
        if ret.state is not R.AWAITING_WITNESS:
            return CommandResult.refuse("engine.no_workflow", f"return {target_id} is not waiting for a witness")
        return RETURN_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]:
        ret = self.returns.by_id[target_id]
        decision = ret.witness_signed(now=self.ctx.now(), signature=signature)
        self.ctx.recorder.commit(decision)
        if decision.refused:
            return self._result(ret, decision, [])
        self.session_of[ret.id] = self.ctx.session.session_id
        return await self._ready(ret)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction:
        return Reaction()  # the return waits for a witness (BeginWitness again) or is cancelled (CancelReturn)

    # --- doing it -----------------------------------------------------------------------------------------------

    def _deposit(self, ret: Return) -> CommandResult[ReturnStep]:
        decision = ret.deposited(now=self.ctx.now())
        if decision.refused:
            self.ctx.recorder.commit(decision)
            return self._result(ret, decision, [])
        removal = self.removal_of[ret.id]
        assert ret.quantity is not None
        sealed = self.ctx.recorder.commit(decision, deposit=deposit_parts(removal, ret.quantity),
                                          journal=[self._journal(ret)])  # fmt: skip
        return self._result(ret, decision, sealed)

    # --- the pocket, the session, a restart ---------------------------------------------------------------------

    def on_compartment(self, workflow_id: str, event: CompartmentEvent, now: datetime) -> Reaction:
        if event.kind in (CompartmentEventKind.OPENED, CompartmentEventKind.OPENED_AND_CLOSED):
            self.opened.add(workflow_id)
        if event.kind is CompartmentEventKind.EXPIRED:
            ret = self.returns.by_id[workflow_id]
            if ret.state is R.READY and workflow_id not in self.opened:  # the hold ran out unopened: try again
                return self._react(ret, ret.cancel(now=now))
        return Reaction()

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        reaction = Reaction()
        for ret in list(self.returns.by_id.values()):
            if self.session_of.get(ret.id) == session_id and ret.state is R.READY:
                accessed = ret.id in self.opened
                reaction.merge(self._react(ret, ret.abandon(now=now, reason=reason, accessed=accessed)))
        return reaction

    def _react(self, ret: Return, decision: Decision) -> Reaction:
        ended = [ret.id] if ret.state in FINISHED else []
        return Reaction([decision], [self._journal(ret)], ended)

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        """A return waiting for its witness comes back as it was; one whose pocket was unlocked is an undocumented
        access (or cancelled, when the board shows its pocket was never opened)."""
        d = entry.details
        ctx = self.ctx
        with ctx.store.read() as reader:
            removal = reader.removal(str(d["pull_id"]))
            medication = reader.medication(entry.item_id) if entry.item_id else None
            actor = reader.user(entry.actor_id)
        end = Reaction(journal=[JournalEnd(entry.workflow_id, "recovered")])
        if removal is None or medication is None or actor is None:
            return end
        item = ReturnItem(medication=medication, quantity_removed=removal.remaining,
                          origin_pocket_id=removal.pocket_id, return_bin_pocket_id=self.bin_pocket_id or "",
                          sealed=bool(d.get("sealed")), lot_number=removal.parts[0][0], patient_id=removal.patient_id,
                          order_id=removal.order_id, pull_id=removal.pull_id)  # fmt: skip
        ret = self.returns.start(entry.workflow_id, actor=actor, item=item)
        self.removal_of[ret.id] = removal
        chosen = ret.choose(now=now, quantity=int(d["quantity"]), destination=ReturnDestination(d["destination"]))
        if entry.state == R.AWAITING_WITNESS.value and ret.state is R.AWAITING_WITNESS:
            return Reaction([chosen])  # pending again: the user begins the witness step once more
        if ret.state is R.READY and ret.destination is ReturnDestination.ORIGINAL_POCKET:
            ret.expected_on_hand = d.get("expected_on_hand")
            abandoned = ret.abandon(now=now, reason="controller_restarted",
                                    accessed=evidence.may_have_opened(entry.compartments))  # fmt: skip
            return Reaction([chosen, abandoned], [JournalEnd(ret.id, ret.state.value)])
        return end

    # --- helpers ------------------------------------------------------------------------------------------------

    def _journal(self, ret: Return) -> JournalWrite:
        if ret.state in FINISHED:
            return JournalEnd(ret.id, ret.state.value)
        chain: tuple[str, ...] = ()
        if ret.destination is ReturnDestination.ORIGINAL_POCKET and ret.state is R.READY:
            chain = self.ctx.topology.unlock_chain[ret.item.origin_pocket_id]
        return JournalEntry(
            workflow_id=ret.id,
            kind=KIND,
            actor_id=ret.actor.id,
            session_id=self.session_of.get(ret.id, 0),
            state=ret.state.value,
            started_at=self.ctx.now(),
            patient_id=ret.item.patient_id,
            item_id=ret.item.medication.id,
            pocket_id=ret.target_pocket_id,
            compartments=tuple(chain),
            details={
                "pull_id": ret.item.pull_id,
                "quantity": ret.quantity,
                "sealed": ret.item.sealed,
                "destination": ret.destination.value if ret.destination else None,
                "expected_on_hand": ret.expected_on_hand,
            },
        )

    def _drop(self, ret: Return) -> None:
        self.returns.detach(ret)
        del self.returns.by_id[ret.id]
        self.removal_of.pop(ret.id, None)

    def _result(self, ret: Return, decision: Decision, sealed: list[SealedEntry],
                **extra: Any) -> CommandResult[ReturnStep]:  # fmt: skip
        payload = ReturnStep(decision.state.value, ret.view(), ret.id, seqs(sealed), **extra)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)


def deposit_parts(removal: Removal, quantity: int) -> Deposit:
    """The returned units, lot by lot: the removal's lots in order, after the units returned before."""
    skip, left = removal.returned, quantity
    parts = []
    for lot, units, expiry in removal.parts:
        usable = max(0, units - skip)
        skip = max(0, skip - units)
        take = min(usable, left)
        if take:
            parts.append((lot, take, expiry))
            left -= take
    return Deposit(tuple(parts))
