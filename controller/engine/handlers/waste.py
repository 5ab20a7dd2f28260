"""Waste at the cabinet: the unused part of a removed dose, recorded right after the pull or later from the user's
pending-waste list.

Responsible for: what a pull removed (its ``dose.removed`` entries, through the store; nothing while a return of
it is in progress, as the journal says) and the dose amount that makes in the item's strength unit (a 4 mg/mL
1 mL cartridge removed is 4 mg); ``WasteDose`` (amount, unit, reason code; a witness for controlled items through
the witness desk), ``DeferWaste`` and the pending-waste list; persisting every waste owed but not recorded in
``pending_wastes`` (``awaiting_witness`` from the moment it is entered and waits for its witness, ``open`` once
deferred or its witness step ends unsigned, ``escalated`` past its due time, ``wasted`` once recorded) in the
transaction of its ledger entry, and loading them back after a restart (one left waiting for a witness is pending
again), each still the waste of its pull (an owed waste's journal row keeps the pull its dose came from, which its
pending row does not); escalation on ``Tick`` past the end of the shift. Waste never moves pocket stock: the dose
already left the pocket with its removal.

Not responsible for: the rules (``controller.fsm.workflows.waste``), the witness's authentication, or returns.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from controller.domain.medication import Medication
from controller.engine.commands.clinical import (
    DeferWaste,
    ListPendingWastes,
    PendingWastes,
    WasteDose,
    WasteStep,
    WitnessFor,
)
from controller.engine.context import EngineContext
from controller.engine.recording import JournalEnd, JournalWrite
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.workflows.waste import RemovedDose, Waste, Wastes, WasteState
from controller.store.cabinet_store import CabinetWriter, JournalEntry, PendingWaste, Removal
from controller.store.engine_state import AWAITING_WITNESS
from controller.store.ledger import SealedEntry

OPEN, ESCALATED, WASTED = "open", "escalated", "wasted"
KIND = JournalKind.WASTE.value
STATUS = {
    WasteState.RECORDED: WASTED,
    WasteState.ESCALATED: ESCALATED,
    WasteState.PENDING: OPEN,
    WasteState.AWAITING_WITNESS: AWAITING_WITNESS,
}
INITIAL = {OPEN: WasteState.PENDING, ESCALATED: WasteState.ESCALATED, AWAITING_WITNESS: WasteState.AWAITING_WITNESS}

_STRENGTH = re.compile(r"^\s*([\d,]*\.?\d+)\s*([^\s/]+)(?:\s*/\s*([\d.]*)\s*(\w+))?")
_VOLUME = re.compile(r"([\d.]+)\s*mL", re.IGNORECASE)


def dose_amount(medication: Medication, units: int) -> tuple[Decimal, str]:
    """The amount ``units`` packages hold in the strength's unit: 2 x "4 mg/mL" 1 mL cartridges are 8 mg; a
    strength that cannot be read counts packages in the item's dispensing unit."""
    match = _STRENGTH.match(medication.strength or "")
    if match is None:
        return Decimal(units), medication.unit
    try:
        per = Decimal(match.group(1).replace(",", ""))
        if match.group(4) is not None and match.group(4).casefold() == "ml":
            per_volume = Decimal(match.group(3) or 1)
            volume = _VOLUME.search(medication.package or "")
            per = per / per_volume * (Decimal(volume.group(1)) if volume else Decimal(1))
    except InvalidOperation:
        return Decimal(units), medication.unit
    return Decimal(format((per * units).normalize(), "f")), match.group(2)


class WasteHandler(Handler):
    """Every waste owed at this cabinet: in memory while it is entered, in ``pending_wastes`` from then on."""

    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.wastes = Wastes(ctx.rules.policy)
        self.row_of: dict[str, int] = {}  # waste id -> pending_wastes row id
        self.removed_seq: dict[str, int] = {}
        self._load()
        r = ctx.registry
        r.add(self)
        r.command(WasteDose, self.waste)
        r.command(DeferWaste, self.defer)
        r.query(ListPendingWastes, self.pending)
        ctx.witness.add_target(WitnessFor.WASTE, self)

    def _load(self) -> None:
        """Every waste still owed comes back from ``pending_wastes`` (after a restart, too)."""
        with self.ctx.store.read() as reader:
            loaded = [(row, reader.medication(row.item_id)) for row in reader.owed_wastes()]
            pulls = {int(e.details["removed_seq"]): str(e.details["pull_id"])
                     for e in reader.live_journal() if e.kind == KIND}  # fmt: skip
        for row, medication in loaded:
            if medication is None:
                continue
            dose = RemovedDose(medication=medication, amount=Decimal(row.amount), unit=row.unit,
                               pocket_id=row.pocket_id, pull_id=pulls.get(row.removed_seq), patient_id=row.patient_id,
                               order_id=row.order_id, lot_number=row.lot_number)  # fmt: skip
            waste = Waste(f"W{row.id}", actor_id=row.user_id, dose=dose, created_at=row.due_at,
                          policy=self.ctx.rules.policy)  # fmt: skip
            waste.due = row.due_at
            initial = INITIAL.get(row.status, WasteState.PENDING)
            if initial is WasteState.ESCALATED:
                waste.escalated_at = row.due_at
            self.wastes.attach(waste, initial=initial)
            self.wastes.by_id[waste.id] = waste
            self.row_of[waste.id] = row.id
            self.removed_seq[waste.id] = row.removed_seq

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.wastes.by_id

    # --- the removal a waste is of ----------------------------------------------------------------------------

    def usable_removal(self, pull_id: str) -> Removal | CommandResult[Any]:
        """The removal of a pull that the logged-in user may waste from."""
        with self.ctx.store.read() as reader:
            removal = reader.removal(pull_id)
            journal = reader.live_journal()
        returning = any(e.kind == JournalKind.RETURN and e.details.get("pull_id") == pull_id for e in journal)
        user = self.ctx.user()
        if removal is None:
            return CommandResult.refuse("engine.no_removal", f"pull {pull_id} removed nothing", pull=pull_id)
        if removal.actor_id != user.id:
            return CommandResult.refuse("workflow.not_owner", f"pull {pull_id} was {removal.actor_id}'s, not "
                                        f"{user.id}'s", pull=pull_id)  # fmt: skip
        owed = any(w.dose.pull_id == pull_id or self.removed_seq.get(w.id) == removal.first_seq
                   for w in self.wastes.by_id.values())  # fmt: skip
        if removal.remaining <= 0 or removal.wasted or owed:
            return CommandResult.refuse(
                "engine.nothing_left",
                f"what pull {pull_id} removed is already returned or has a waste recorded or owed",
                pull=pull_id,
            )
        if returning:  # a return of it waits for its witness or for the pocket: the dose is not the waste's
            return CommandResult.refuse("engine.nothing_left", f"a return of pull {pull_id} is in progress",
                                        pull=pull_id)  # fmt: skip
        return removal

    def _new_waste(self, pull_id: str) -> Waste | CommandResult[Any]:
        removal = self.usable_removal(pull_id)
        if isinstance(removal, CommandResult):
            return removal
        with self.ctx.store.read() as reader:
            medication = reader.medication(removal.item_id)
        assert medication is not None
        amount, unit = dose_amount(medication, removal.remaining)
        dose = RemovedDose(medication=medication, amount=amount, unit=unit, pocket_id=removal.pocket_id,
                           pull_id=removal.pull_id, patient_id=removal.patient_id, order_id=removal.order_id,
                           lot_number=removal.parts[0][0])  # fmt: skip
        self.wastes.policy = self.ctx.rules.policy
        waste = self.wastes.start(f"W-{uuid.uuid4().hex[:10]}", actor_id=removal.actor_id, dose=dose, now=removal.at)
        self.removed_seq[waste.id] = removal.first_seq
        return waste

    def _drop(self, waste: Waste) -> None:
        self.wastes.detach(waste)
        del self.wastes.by_id[waste.id]
        self.removed_seq.pop(waste.id, None)

    # --- commands -----------------------------------------------------------------------------------------------

    async def waste(self, command: WasteDose) -> CommandResult[WasteStep]:
        ctx = self.ctx
        user = ctx.user()
        if (command.pull_id is None) == (command.waste_id is None):
            return CommandResult.refuse("engine.no_workflow", "name the pull the dose came from, or the pending "
                                        "waste (one of the two)")  # fmt: skip
        fresh = command.waste_id is None
        if command.waste_id is not None:
            found = self.wastes.by_id.get(command.waste_id)
            if found is None or not found.is_pending:
                return CommandResult.refuse("engine.unknown_waste", f"no pending waste {command.waste_id}",
                                            waste=command.waste_id)  # fmt: skip
            waste = found
        else:
            assert command.pull_id is not None
            made = self._new_waste(command.pull_id)
            if isinstance(made, CommandResult):
                return made
            waste = made
        decision = waste.enter(now=ctx.now(), user_id=user.id, amount=command.amount, unit=command.unit,
                               reason=command.reason, note=command.note)  # fmt: skip
        if decision.refused:
            ctx.recorder.commit(decision)
            if fresh:
                self._drop(waste)
            return self._result(decision, [], waste)
        sealed = self._record(waste, decision)
        if waste.state is WasteState.AWAITING_WITNESS:
            begun = ctx.witness.begin(WitnessFor.WASTE, waste.id)
            if begun.payload is None:  # no step opened (another is open): the waste waits on the pending list
                sealed += self._record(waste, waste.witness_cancelled(now=ctx.now()))
                payload = WasteStep(waste.state.value, waste.view(), seqs(sealed), self.row_of.get(waste.id))
                return begun.refusal().with_payload(payload)
            return self._result(decision, sealed, waste, witness_step=begun.payload.witness_step)
        return self._result(decision, sealed, waste)

    async def defer(self, command: DeferWaste) -> CommandResult[WasteStep]:
        made = self._new_waste(command.pull_id)
        if isinstance(made, CommandResult):
            return made
        decision = made.defer(now=self.ctx.now(), user_id=self.ctx.user().id)
        if decision.refused:
            self.ctx.recorder.commit(decision)
            self._drop(made)
            return self._result(decision, [], made)
        return self._result(decision, self._record(made, decision), made)

    def pending(self, query: ListPendingWastes) -> CommandResult[PendingWastes]:
        return CommandResult.done(PendingWastes(tuple(w.view() for w in self.wastes.pending_for(query.user_id))))

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": "waste", **w.view()} for w in self.wastes.by_id.values() if w.is_pending]

    # --- the witness step -----------------------------------------------------------------------------------------

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        waste = self.wastes.by_id.get(target_id)
        user = self.ctx.session.user
        if waste is None or waste.state is not WasteState.AWAITING_WITNESS or user is None:
            return CommandResult.refuse("engine.no_workflow", f"waste {target_id} is not waiting for a witness")
        if waste.actor_id != user.id:
            return CommandResult.refuse("workflow.not_owner", f"waste {waste.id} is {waste.actor_id}'s to record",
                                        waste=waste.id)  # fmt: skip
        return waste.witness_action

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]:
        waste = self.wastes.by_id[target_id]
        decision = waste.witness_signed(now=self.ctx.now(), signature=signature)
        if decision.refused:
            self.ctx.recorder.commit(decision)
            return self._result(decision, [], waste)
        return self._result(decision, self._record(waste, decision), waste)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction:
        waste = self.wastes.by_id.get(target_id)
        if waste is None or waste.state is not WasteState.AWAITING_WITNESS:
            return Reaction()
        self._record(waste, waste.witness_cancelled(now=self.ctx.now()))
        return Reaction()

    # --- time and restarts ------------------------------------------------------------------------------------

    def on_tick(self, now: datetime) -> Reaction:
        """Escalate what is overdue; a waste left waiting for a witness with no step open (the step was abandoned,
        or lost to a restart) goes to the pending list."""
        recorded: list[SealedEntry] = []
        for waste in list(self.wastes.by_id.values()):
            if waste.state is WasteState.AWAITING_WITNESS and self.ctx.witness.step_for(WitnessFor.WASTE, waste.id):
                continue
            if waste.state is WasteState.AWAITING_WITNESS:
                recorded += self._record(waste, waste.witness_cancelled(now=now))
            elif waste.is_pending:
                recorded += self._record(waste, waste.tick(now=now))
        return Reaction(recorded=recorded)

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        return Reaction()  # the waste came back from its pending row when the handler was built (``_load``)

    def on_restore(self, now: datetime) -> Reaction:
        recorded: list[SealedEntry] = []
        for waste in list(self.wastes.by_id.values()):
            if waste.state is WasteState.AWAITING_WITNESS:  # its witness step died with the controller
                recorded += self._record(waste, waste.witness_cancelled(now=now))
        return Reaction(recorded=recorded)

    # --- recording ----------------------------------------------------------------------------------------------

    def _record(self, waste: Waste, decision: Decision) -> list[SealedEntry]:
        """The decision's entries and the waste's pending row, in one transaction."""
        if decision.refused:
            return self.ctx.recorder.commit(decision)
        status = STATUS.get(WasteState(waste.state))
        made: list[int] = []

        def apply(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            if status is None:
                return
            row_id = self.row_of.get(waste.id)
            if row_id is None:
                if status == WASTED:
                    return  # recorded straight away: it was never owed
                dose = waste.dose
                row_id = tx.add_pending_waste(PendingWaste(
                    0, waste.actor_id, dose.patient_id, dose.order_id, dose.medication.id, dose.pocket_id,
                    dose.lot_number, str(dose.amount), dose.unit, self.removed_seq.get(waste.id, 0), waste.due, status,
                ))  # fmt: skip
                made.append(row_id)
            tx.set_pending_waste_status(row_id, status)

        sealed = self.ctx.recorder.commit(decision, journal=self._journal(waste, status), then=apply)
        if made:  # only once the transaction committed
            self.row_of[waste.id] = made[0]
        return sealed

    def _journal(self, waste: Waste, status: str | None) -> list[JournalWrite]:
        """Written with an owed waste's pending row, ended when it is recorded: the pull its dose came from, so that
        after a restart it is still that pull's waste (no second waste or return of the dose; its entries name it)."""
        removed_seq = self.removed_seq.get(waste.id, 0)
        key = f"waste-{removed_seq}"
        if status == WASTED:
            return [JournalEnd(key, WASTED)] if waste.id in self.row_of else []
        dose = waste.dose
        if status is None or waste.id in self.row_of or dose.pull_id is None:
            return []
        # No pocket: a waste holds none (the dose left its pocket with the removal).
        return [JournalEntry(workflow_id=key, kind=KIND, actor_id=waste.actor_id,
                             session_id=self.ctx.session.session_id, state=status, started_at=self.ctx.now(),
                             patient_id=dose.patient_id, item_id=dose.medication.id,
                             details={"pull_id": dose.pull_id, "removed_seq": removed_seq})]  # fmt: skip

    def _result(self, decision: Decision, sealed: list[SealedEntry], waste: Waste,
                witness_step: Mapping[str, Any] | None = None) -> CommandResult[WasteStep]:  # fmt: skip
        payload = WasteStep(decision.state.value, waste.view(), seqs(sealed), self.row_of.get(waste.id), witness_step)
        if waste.state is WasteState.RECORDED and waste.id in self.wastes.by_id:
            self._drop(waste)  # on the record now; the ledger is what says it was wasted
            self.row_of.pop(waste.id, None)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)
