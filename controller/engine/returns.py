"""Returns at the cabinet: a removed dose that was not given goes back.

Responsible for: ``ReturnDose`` from what a pull removed (less what was already returned; a pull with a waste
recorded or owed is not returned); the return bin by default: a stock movement (``DOSE_RETURNED``, +units) into
the return-bin pocket through ``InventoryStore.apply``, lot by lot as removed. The return bin is modelled as a
one-way chute: nothing is unlocked for it (what goes in cannot be taken out at the cabinet; pharmacy opens it with
its own key, out of scope here), so the deposit is recorded when the return is chosen (and witnessed). The
original pocket only for a sealed, non-controlled item when ``FsmSettings.return_sealed_to_pocket`` allows: its
compartments are unlocked with a grant for the return (so the drawer opening is authorised), and the deposit is
recorded on ``ConfirmReturn``. A controlled return is witnessed when the policy lists ``CONTROLLED_RETURN``.

Not responsible for: the rules (``controller.fsm.workflows.returns``), billing credit, pharmacy's count of the bin.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from controller.domain.topology import DrawerKind
from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import CancelReturn, ConfirmReturn, ReturnDose, WitnessFor
from controller.engine.waste import Removal, usable_removal
from controller.engine.witness import Deposit, WitnessDesk, record
from controller.fsm.base import Decision, Outcome, WitnessSignature
from controller.fsm.compartment import CompartmentState, UnlockFailure, UnlockGrant
from controller.fsm.workflows.returns import (
    RETURN_WITNESS,
    Return,
    ReturnDestination,
    ReturnItem,
    Returns,
    ReturnState,
)
from controller.store import engine_state as state
from controller.store.ledger import SealedEntry

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine


class ReturnDesk:
    def __init__(self, engine: CabinetEngine, witness: WitnessDesk) -> None:
        self.engine = engine
        self.witness = witness
        self.returns = Returns(engine.policy, engine.settings)
        self.removal_of: dict[str, Removal] = {}
        bins = [s.pocket_id for s in engine.slots.values() if s.drawer_kind == DrawerKind.RETURN_BIN.value]
        self.bin_pocket_id: str | None = bins[0] if bins else None
        witness.add_target(WitnessFor.RETURN, self)
        engine.register(ReturnDose, self.start)
        engine.register(ConfirmReturn, self.confirm)
        engine.register(CancelReturn, self.cancel)

    async def start(self, command: ReturnDose) -> CommandResult:
        self.witness.reconcile()
        removal = usable_removal(self.engine, command.pull_id)
        if isinstance(removal, CommandResult):
            return removal
        if any(r.state in (ReturnState.AWAITING_WITNESS, ReturnState.READY) for r in self._of(removal.pull_id)):
            return CommandResult.refuse(
                "engine.nothing_left", f"a return of pull {removal.pull_id} is already in progress"
            )
        try:
            destination = ReturnDestination(command.destination)
        except ValueError:
            return CommandResult.refuse(
                "workflow.return_to_pocket_refused",
                f"unknown destination {command.destination!r}",
                destination=command.destination,
            )
        if destination is ReturnDestination.RETURN_BIN and self.bin_pocket_id is None:
            return CommandResult.refuse("engine.no_return_bin", "this cabinet has no return bin")
        with self.engine.db.read() as session:
            medication = state.get_medication(session, removal.item_id)
        assert medication is not None
        user = self.engine.session.user
        assert user is not None
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
        ret = self.returns.start(f"R-{uuid.uuid4().hex[:10]}", actor=user, item=item)
        self.removal_of[ret.id] = removal
        decision = ret.choose(now=self.engine.clock.now(), quantity=command.quantity, destination=destination)
        if decision.refused:
            self._drop(ret)
            return self._result(decision, [], ret)
        if ret.state is ReturnState.AWAITING_WITNESS:
            begun = self.witness.begin(WitnessFor.RETURN, ret.id)
            return CommandResult.success(
                state=ret.state.value, ret=ret.view(), return_id=ret.id, witness_step=begun.data.get("witness_step")
            )
        return await self._ready(ret)

    async def _ready(self, ret: Return) -> CommandResult:
        """Chosen (and witnessed): into the bin now, or unlock the original pocket and wait for the confirm."""
        if ret.destination is ReturnDestination.RETURN_BIN:
            return self._deposit(ret)
        return await self._unlock(ret)

    async def confirm(self, command: ConfirmReturn) -> CommandResult:
        self.witness.reconcile()
        ret = self.returns.by_id.get(command.return_id)
        if ret is None or ret.destination is not ReturnDestination.ORIGINAL_POCKET:
            return CommandResult.refuse("engine.no_workflow", f"no return {command.return_id} to the pocket")
        return self._deposit(ret)

    async def cancel(self, command: CancelReturn) -> CommandResult:
        self.witness.reconcile()
        ret = self.returns.by_id.get(command.return_id)
        if ret is None:
            return CommandResult.refuse("engine.no_workflow", f"no return {command.return_id}")
        decision = ret.cancel(now=self.engine.clock.now())
        return self._result(decision, record(self.engine, decision.outcomes), ret)

    # --- the witness step -----------------------------------------------------------------------------------------

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        ret = self.returns.by_id.get(target_id or "")
        user = self.engine.session.user
        if ret is None or ret.state is not ReturnState.AWAITING_WITNESS or user is None or ret.actor.id != user.id:
            return CommandResult.refuse("engine.no_workflow", f"return {target_id} is not waiting for a witness")
        return ret.id, RETURN_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult:
        ret = self.returns.by_id[target_id]
        decision = ret.witness_signed(now=self.engine.clock.now(), signature=signature)
        if decision.refused:
            return self._result(decision, [], ret)
        return await self._ready(ret)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]:
        return []  # the return waits for a witness (BeginWitness again) or is cancelled (CancelReturn)

    # --- doing it -------------------------------------------------------------------------------------------------

    def _deposit(self, ret: Return) -> CommandResult:
        decision = ret.deposited(now=self.engine.clock.now())
        if decision.refused:
            return self._result(decision, [], ret)
        removal = self.removal_of[ret.id]
        assert ret.quantity is not None
        sealed = record(self.engine, decision.outcomes, deposit=_deposit_parts(removal, ret.quantity))
        return self._result(decision, sealed, ret)

    async def _unlock(self, ret: Return) -> CommandResult:
        engine = self.engine
        pocket_id = ret.item.origin_pocket_id
        chain = [engine.compartments[cid] for cid in engine.unlock_chain[pocket_id]]
        refusal = engine.unaccounted_refusal()
        if refusal is not None:
            return refusal
        for compartment in chain:
            if compartment.state is not CompartmentState.LOCKED:
                return CommandResult.refuse(
                    "fsm.event_not_allowed",
                    f"{compartment.id} is {compartment.state.value}; it cannot be unlocked now",
                    compartment=compartment.id,
                )
        outcomes: list[Outcome] = []
        for compartment in chain:
            now = engine.clock.now()
            grant = UnlockGrant(engine.session.session_id, ret.actor.id, compartment.id, "return", ret.id)
            requested = compartment.unlock_requested(now=now, session=engine.session, grant=grant)
            if requested.refused:
                engine._release_unlocked(chain)
                await engine._relock(chain)
                return self._result(requested, [], ret)
            error = await engine._actuate(compartment)
            if error is not None:
                outcomes.extend(compartment.unlock_failed(now=engine.clock.now(), cause=_cause(error.code)).outcomes)
                await engine._relock(chain)
                record(engine, outcomes)
                return CommandResult.from_error(error, return_id=ret.id, state=ret.state.value)
            compartment.unlock_confirmed(now=engine.clock.now())
        await engine._guide(pocket_id)
        return CommandResult.success(state=ret.state.value, ret=ret.view(), return_id=ret.id, unlocked=pocket_id)

    # --- helpers --------------------------------------------------------------------------------------------------

    def _of(self, pull_id: str) -> list[Return]:
        return [r for r in self.returns.by_id.values() if r.item.pull_id == pull_id]

    def _drop(self, ret: Return) -> None:
        self.returns.detach(ret)
        del self.returns.by_id[ret.id]
        self.removal_of.pop(ret.id, None)

    def _result(self, decision: Decision, sealed: list[SealedEntry], ret: Return) -> CommandResult:
        data: dict[str, Any] = {
            "state": decision.state.value,
            "ledger_seqs": [e.seq for e in sealed],
            "ret": ret.view(),
            "return_id": ret.id,
        }
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)


def _deposit_parts(removal: Removal, quantity: int) -> Deposit:
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


def _cause(code: str) -> UnlockFailure:
    if code == "device.drawer_jammed":
        return UnlockFailure.JAMMED
    if code.startswith("device."):
        return UnlockFailure.LOCK_FAULT
    return UnlockFailure.NO_RESPONSE
