"""Restock, load and unload of one pocket by a technician, end to end: the pick list from par levels, the pocket
unlocked through the actuator, a blind count-back, each package scanned and checked, and one stock entry per lot.

Responsible for: the pick list (pockets at or below min, refilled to par, never above max; expired and
quarantined units do not count towards par but do take up room); starting a ``Restock`` machine on a line and
unlocking its pocket (journaled first); following its pocket (an opening is noted: it decides what an unfinished
restock leaves behind); reading the scanner or camera; refusing a quarantined lot before the machine sees it and
an unload beyond what a lot holds; the witness of a controlled restock (``SignRestockWitness``, or
``BeginWitness`` of kind ``restock`` then ``SignWitness``, through the one witness desk); and the end however it
comes: finished, cancelled (its pocket relocked), its session ending or a restart (its pocket opened and the
restock unfinished: an undocumented access; nothing scanned is stocked).

Not responsible for: who may restock or witness (the machine, the session and the policies), or the lots' stock
itself (the recorder moves it with the entries).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from controller.engine.commands.clinical import WitnessFor
from controller.engine.commands.pharmacy import (
    CancelRestock,
    CountBack,
    FinishRestock,
    PickList,
    RestockStep,
    ScanPackage,
    ShowPickList,
    SignRestockWitness,
    StartRestock,
)
from controller.engine.context import EngineContext
from controller.engine.package_check import check_package
from controller.engine.recording import JournalEnd, JournalWrite
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import CompartmentEvent, CompartmentEventKind, Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision, Outcome, OutcomeKind, WitnessSignature
from controller.fsm.workflows.restock import (
    RESTOCK_WITNESS,
    PackageScan,
    PickLine,
    Restock,
    RestockKind,
    Restocks,
    RestockState,
    ScanVerdict,
)
from controller.store.cabinet_store import CabinetReader, JournalEntry
from controller.store.ledger import SealedEntry

KIND = JournalKind.RESTOCK.value
S = RestockState


def pick_list(reader: CabinetReader, today: Any) -> list[dict[str, Any]]:
    """Pockets at or below their minimum (usable units only), with the quantity that refills them to par without
    going above max (counting every unit physically there)."""
    lines: list[dict[str, Any]] = []
    for pocket in reader.pockets():
        if pocket.item_id is None or pocket.drawer_kind == "return_bin":
            continue
        usable = sum(lot.quantity for lot in reader.usable_lots(pocket.pocket_id, today))
        if usable > pocket.min:
            continue
        quantity = min(pocket.par - usable, pocket.max - pocket.quantity)
        if quantity <= 0:
            continue
        lines.append({"pocket_id": pocket.pocket_id, "item_id": pocket.item_id, "item_name": pocket.item_name,
                      "quantity": quantity, "controlled": bool(pocket.dea_schedule)})  # fmt: skip
    return lines


class RestockHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.restocks = Restocks(ctx.rules.policy, ctx.rules.machines)
        self.session_of: dict[str, int] = {}
        self.opened: set[str] = set()  # restocks whose pocket was opened for them
        r = ctx.registry
        r.add(self)
        r.query(ShowPickList, self.show_pick_list)
        r.command(StartRestock, self.start)
        r.command(CountBack, self.count_back)
        r.command(ScanPackage, self.scan)
        r.command(FinishRestock, self.finish)
        r.command(CancelRestock, self.cancel)
        r.command(SignRestockWitness, self.sign_witness)
        ctx.witness.add_target(WitnessFor.RESTOCK, self)

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.restocks.by_id

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        waiting = [w for w in self.restocks.by_id.values() if w.state is S.AWAITING_WITNESS and w.actor.id == user_id]
        return [{"kind": WitnessFor.RESTOCK.value, "target_id": w.id, "action": RESTOCK_WITNESS} for w in waiting]

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, **r.view()} for r in self.restocks.by_id.values() if not r.is_finished]

    def show_pick_list(self, query: ShowPickList) -> CommandResult[PickList]:
        with self.ctx.store.read() as reader:
            return CommandResult.done(PickList(tuple(pick_list(reader, self.ctx.now().date()))))

    # --- commands -----------------------------------------------------------------------------------------------

    async def start(self, command: StartRestock) -> CommandResult[RestockStep]:
        ctx = self.ctx
        mine = [r for r in self.restocks.by_id.values()
                if not r.is_finished and self.session_of.get(r.id) == ctx.session.session_id]  # fmt: skip
        if mine:
            return CommandResult.refuse("fsm.event_not_allowed", f"restock {mine[0].id} is still in progress: finish "
                                        "or cancel it first", restock=mine[0].id)  # fmt: skip
        slot = ctx.topology.slots.get(command.pocket_id)
        if slot is None or slot.item_id is None:
            return CommandResult.refuse("inventory.unknown_pocket", f"no stocked pocket {command.pocket_id}",
                                        pocket=command.pocket_id)  # fmt: skip
        with ctx.store.read() as reader:
            medication = reader.medication(slot.item_id)
            on_hand = reader.on_hand(slot.pocket_id)
            quantity = command.quantity
            if quantity is None:
                suggested = [
                    line for line in pick_list(reader, ctx.now().date()) if line["pocket_id"] == slot.pocket_id
                ]
                quantity = suggested[0]["quantity"] if suggested else 0
        assert medication is not None
        line = PickLine(kind=command.kind, medication=medication, pocket_id=slot.pocket_id,
                        compartment_id=ctx.topology.innermost(slot.pocket_id), expected_on_hand=on_hand,
                        quantity=quantity, source=command.source)  # fmt: skip
        self.restocks.policy, self.restocks.settings = ctx.rules.policy, ctx.rules.machines
        restock = self.restocks.start(f"RST-{uuid.uuid4().hex[:12]}", actor=ctx.user(), line=line)
        self.session_of[restock.id] = ctx.session.session_id
        decision = restock.begin(now=ctx.now())
        if decision.refused:  # never started (no privilege, no custody source): nothing of it is kept
            ctx.recorder.commit(decision)
            self.restocks.detach(restock)
            del self.restocks.by_id[restock.id]
            del self.session_of[restock.id]
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal)
        unlocked = await ctx.actuator.unlock(slot.pocket_id, workflow_id=restock.id, purpose=command.kind.value,
                                             journal=[self._journal(restock)])  # fmt: skip
        sealed = list(unlocked.sealed) + ctx.recorder.commit(decision)
        if not unlocked.ok:
            cancelled = restock.cancel(now=ctx.now())
            sealed += ctx.recorder.commit(cancelled, journal=[self._journal(restock)])
            payload = RestockStep(restock.view(), restock.state.value, seqs(sealed))
            if unlocked.error is not None:
                return CommandResult.from_error(unlocked.error, payload)
            assert unlocked.refusal is not None
            return CommandResult.refused(unlocked.refusal, payload)
        return self._result(restock, decision, sealed, unlocked=unlocked.compartments)

    def _mine(self, restock_id: str) -> Restock | CommandResult[Any]:
        restock = self.restocks.by_id.get(restock_id)
        user = self.ctx.session.user
        if restock is None or restock.is_finished:
            return CommandResult.refuse("engine.no_workflow", f"no restock {restock_id} in progress; start one first",
                                        restock=restock_id)  # fmt: skip
        if user is None or restock.actor.id != user.id:
            return CommandResult.refuse("workflow.not_owner", f"restock {restock_id} is {restock.actor.id}'s")
        return restock

    async def count_back(self, command: CountBack) -> CommandResult[RestockStep]:
        restock = self._mine(command.restock_id)
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.count_entered(now=self.ctx.now(), count=command.count)
        return self._result(restock, decision, self.ctx.recorder.commit(decision, journal=[self._journal(restock)]))

    async def scan(self, command: ScanPackage) -> CommandResult[RestockStep]:
        restock = self._mine(command.restock_id)
        if isinstance(restock, CommandResult):
            return restock
        ctx = self.ctx
        if restock.state is not S.SCANNING:
            decision = restock.scanned(now=ctx.now(), scan=None)  # type: ignore[arg-type]  # refused: not scanning
            ctx.recorder.commit(decision)
            return self._result(restock, decision, [])
        read = await ctx.packages.read(by_camera=command.by_camera, timeout_s=command.timeout_s)
        with ctx.store.read() as reader:
            check = check_package(reader, read.reading, restock.line.medication, today=ctx.now().date(),
                                  short_dated_warning=ctx.rules.machines.short_dated_warning,
                                  pocket_id=restock.line.pocket_id)  # fmt: skip
            on_hand_of_lot = reader.lot_on_hand(restock.line.pocket_id, check.reading.lot_number or "")
        scan_view = {**check.view(), "read_by": read.source}
        if check.quarantined and restock.line.kind is not RestockKind.UNLOAD:
            sealed = ctx.recorder.commit(self._refused(restock, check.reading.lot_number, "lot_quarantined",
                                                       ndc=check.reading.ndc10))  # fmt: skip
            return CommandResult.refuse(
                "quarantine.lot_quarantined",
                f"lot {check.reading.lot_number} of {restock.line.medication.display_name} is quarantined",
                lot=check.reading.lot_number,
                item=restock.line.medication.id,
            ).with_payload(RestockStep(restock.view(), restock.state.value, seqs(sealed), scan=scan_view))
        package = check.package(command.units)
        beyond = self._unload_beyond_lot(restock, package, on_hand_of_lot)
        if beyond is not None:
            return beyond
        decision = restock.scanned(now=ctx.now(), scan=package)
        sealed = ctx.recorder.commit(decision, journal=[self._journal(restock)])
        return self._result(restock, decision, sealed, scan=scan_view)

    def _refused(self, restock: Restock, lot: str | None, reason: str, **details: Any) -> Outcome:
        return Outcome(OutcomeKind.SCAN_REFUSED, self.ctx.now(), actor_id=restock.actor.id,
                       item_id=restock.line.medication.id, pocket_id=restock.line.pocket_id, lot_number=lot,
                       reason_code=reason, details={"restock_id": restock.id, **details})  # fmt: skip

    def _unload_beyond_lot(self, restock: Restock, package: PackageScan, on_hand: int) -> CommandResult[Any] | None:
        """Validate before anything moves: an unload takes from a lot no more than the pocket holds of it (or the
        finish would be refused by the store after the machine had already finished, losing every scan)."""
        lot = package.lot_number
        if restock.line.kind is not RestockKind.UNLOAD or package.verdict is not ScanVerdict.MATCH or lot is None:
            return None
        taking = package.quantity + sum(p.quantity for p in restock.packages if p.lot_number == lot)
        if taking <= on_hand:
            return None
        self.ctx.recorder.commit(self._refused(restock, lot, "beyond_lot", on_hand=on_hand, unloading=taking))
        return CommandResult.refuse("inventory.negative_quantity", f"pocket {restock.line.pocket_id} holds {on_hand} "
                                    f"of lot {lot}; cannot unload {taking}", pocket=restock.line.pocket_id, lot=lot,
                                    on_hand=on_hand, change=-taking)  # fmt: skip

    async def finish(self, command: FinishRestock) -> CommandResult[RestockStep]:
        restock = self._mine(command.restock_id)
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.finish(now=self.ctx.now())
        sealed = await self._record(restock, decision)
        if decision.accepted and restock.state is S.AWAITING_WITNESS:
            return self._result(restock, decision, sealed, next="a second person signs: SignRestockWitness")
        return self._result(restock, decision, sealed)

    async def cancel(self, command: CancelRestock) -> CommandResult[RestockStep]:
        restock = self._mine(command.restock_id)
        if isinstance(restock, CommandResult):
            return restock
        decision = restock.cancel(now=self.ctx.now())
        return self._result(restock, decision, await self._record(restock, decision))

    async def _record(self, restock: Restock, decision: Decision) -> list[SealedEntry]:
        sealed = self.ctx.recorder.commit(decision, journal=[self._journal(restock)])
        if restock.is_finished:
            sealed += await self.ctx.actuator.release(restock.id)
        return sealed

    # --- the witness of a controlled restock ------------------------------------------------------------------

    async def sign_witness(self, command: SignRestockWitness) -> CommandResult[RestockStep]:
        """Open the witness step for the waiting restock (unless it is open) and sign it, in one command."""
        restock = self._mine(command.restock_id)
        if isinstance(restock, CommandResult):
            return restock
        desk = self.ctx.witness
        if desk.step_for(WitnessFor.RESTOCK, restock.id) is None:
            begun = desk.begin(WitnessFor.RESTOCK, restock.id)
            if not begun.ok:
                return begun.refusal()
        signed = await desk.sign(command.user_id, pin=command.pin, badge=command.badge)
        target = signed.payload.target if signed.payload is not None else None
        if isinstance(target, RestockStep):
            assert signed.payload is not None
            if signed.ok:  # who signed goes with the step, as for any witness (``WitnessSigned``)
                return CommandResult.done(target, witness_id=signed.payload.witness_id)
            return signed.with_payload(target)
        if signed.ok:  # signed, but the restock answered with something else: it had ended meanwhile
            return CommandResult.refuse("engine.no_workflow", f"restock {restock.id} is no longer waiting")
        return signed.refusal()

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        restock = self._mine(target_id)
        if isinstance(restock, CommandResult):
            return restock
        if restock.state is not S.AWAITING_WITNESS:
            return CommandResult.refuse("engine.no_workflow", f"restock {target_id} is not waiting for a witness")
        return RESTOCK_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]:
        restock = self.restocks.by_id[target_id]
        decision = restock.witness_signed(now=self.ctx.now(), signature=signature)
        return self._result(restock, decision, await self._record(restock, decision))

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction:
        return Reaction()  # it keeps waiting (nothing is stocked until signed); signed again or cancelled

    # --- its pocket, its session, a restart ---------------------------------------------------------------------

    def on_compartment(self, workflow_id: str, event: CompartmentEvent, now: datetime) -> Reaction:
        if event.kind in (CompartmentEventKind.OPENED, CompartmentEventKind.OPENED_AND_CLOSED,
                          CompartmentEventKind.TAMPERED):  # fmt: skip
            self.opened.add(workflow_id)
            restock = self.restocks.by_id[workflow_id]
            if not restock.is_finished:
                return Reaction(journal=[self._journal(restock)])
        return Reaction()

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        reaction = Reaction()
        for restock in list(self.restocks.by_id.values()):
            if self.session_of.get(restock.id) == session_id and not restock.is_finished:
                decision = restock.abandon(now=now, reason=reason, accessed=restock.id in self.opened)
                reaction.merge(Reaction([decision], [self._journal(restock)], [restock.id]))
        return reaction

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        accessed = bool(entry.details.get("opened")) or evidence.may_have_opened(entry.compartments)
        outcome = Outcome(
            OutcomeKind.UNDOCUMENTED_ACCESS if accessed else OutcomeKind.WORKFLOW_CANCELLED,
            now,
            actor_id=entry.actor_id,
            item_id=entry.item_id,
            pocket_id=entry.pocket_id,
            quantity_expected=entry.details.get("expected_on_hand") if accessed else None,
            reason_code="undocumented_access" if accessed else "controller_restarted",
            details={
                "restock_id": entry.workflow_id,
                "workflow_id": entry.workflow_id,
                "workflow": KIND,
                "state_before": entry.state,
                "ended_by": "controller_restarted",
                "scanned_not_stocked": entry.details.get("packages", 0),
            },
        )
        return Reaction([Decision("recover", True, S(entry.state), S(entry.state), (outcome,))],
                        [JournalEnd(entry.workflow_id, "recovered")])  # fmt: skip

    # --- helpers ------------------------------------------------------------------------------------------------

    def _journal(self, restock: Restock) -> JournalWrite:
        if restock.is_finished:
            return JournalEnd(restock.id, restock.state.value)
        return JournalEntry(
            workflow_id=restock.id,
            kind=KIND,
            actor_id=restock.actor.id,
            session_id=self.session_of.get(restock.id, 0),
            state=restock.state.value,
            started_at=self.ctx.now(),
            item_id=restock.line.medication.id,
            pocket_id=restock.line.pocket_id,
            compartments=self.ctx.topology.unlock_chain[restock.line.pocket_id],
            details={"kind": restock.line.kind.value, "opened": restock.id in self.opened,
                     "packages": len(restock.packages), "expected_on_hand": restock.line.expected_on_hand},
        )  # fmt: skip

    def _result(self, restock: Restock, decision: Decision, sealed: list[SealedEntry],
                **extra: Any) -> CommandResult[RestockStep]:  # fmt: skip
        payload = RestockStep(restock.view(), restock.state.value, seqs(sealed), **extra)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)
