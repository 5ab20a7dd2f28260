"""Pulls: one dose for one patient, from choosing the patient to the closed pocket; several alive at once.

Responsible for: building what the pull machine decides with (patient admitted, order, medication, pocket, stock,
allergies, an open controlled-substance discrepancy of the user, an undocumented access blocking the pocket);
unlocking through the actuator once the machine is ready, with the pull's journal row durable first; following
its pocket through the sensors (opened, closed, opened and closed between two reads, the hold running out, a
tamper); the witness of a witnessed removal; the removed-package scan; the take (validated against the usable
lots before anything is recorded); cancel (the pocket relocks, the cancel is recorded); and a pull's end however
it comes: done, cancelled, its session ending, the shift ending, or a restart (``recover``) — every end after an
access that was not closed out is an undocumented-access discrepancy naming the pocket, the user and the pull.

Not responsible for: the rules (``controller.fsm.workflows.pull``), the lots a removal comes from (the recorder,
FEFO), or the unlock chain (the actuator).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

from controller.domain.allergies import allergy_conflicts
from controller.domain.dose_units import units_for_dose
from controller.domain.policies import discrepancy_deadline, search_medications
from controller.engine.commands.clinical import WitnessFor
from controller.engine.commands.pull import (
    CancelPull,
    EnterCount,
    GetPull,
    ListPulls,
    MedicationMatches,
    PullList,
    PullStep,
    ScanRemoved,
    SearchMedications,
    SelectItem,
    StartPull,
    Take,
)
from controller.engine.context import EngineContext
from controller.engine.package_check import check_package
from controller.engine.recording import JournalEnd, JournalWrite, plan_removal
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import CompartmentEvent, CompartmentEventKind, Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.compartment import CompartmentState
from controller.fsm.workflows.discrepancy import DiscrepancyState, DiscrepancyView, discrepancy_blocks
from controller.fsm.workflows.pull import (
    AFTER_OPEN,
    REMOVAL_WITNESS,
    Pull,
    PullItem,
    PullRecord,
    Pulls,
    PullState,
    recover_pull,
)
from controller.store.cabinet_store import CabinetReader, JournalEntry
from controller.store.engine_state import UNDOCUMENTED_ACCESS
from controller.store.ledger import SealedEntry

P = PullState
E = CompartmentEventKind
KIND = JournalKind.PULL.value
KEEP_FINISHED = 200  # finished pulls kept for their views (GET /pulls/{id}); older ones are dropped
OPEN_STATES = frozenset({"open", "escalated"})


class PullHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.pulls = Pulls(ctx.rules.policy, ctx.rules.machines)
        self._finished: OrderedDict[str, None] = OrderedDict()
        r = ctx.registry
        r.add(self)
        r.command(StartPull, self.start)
        r.command(SelectItem, self.select_item)
        r.command(EnterCount, self.enter_count)
        r.command(ScanRemoved, self.scan_removed)
        r.command(Take, self.take)
        r.command(CancelPull, self.cancel)
        r.query(GetPull, self.get)
        r.query(ListPulls, self.listing)
        r.query(SearchMedications, self.search)
        ctx.witness.add_target(WitnessFor.PULL, self)

    # --- finding a pull -----------------------------------------------------------------------------------------

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.pulls.by_id

    def _mine(self, pull_id: str) -> Pull | CommandResult[PullStep]:
        """The pull ``pull_id`` of the logged-in user's session, still in progress."""
        pull = self.pulls.by_id.get(pull_id)
        session = self.ctx.session
        if pull is None:
            return CommandResult.refuse("engine.unknown_pull", f"no pull {pull_id} at this cabinet", pull=pull_id)
        if pull.session_id != session.session_id or pull.actor.id != session.active_user_id:
            return CommandResult.refuse("workflow.not_owner", f"pull {pull_id} belongs to another session",
                                        pull=pull_id)  # fmt: skip
        if pull.is_finished:
            return CommandResult.refuse("engine.no_workflow", f"pull {pull_id} has ended ({pull.state.value})",
                                        pull=pull_id, state=pull.state.value)  # fmt: skip
        return pull

    def get(self, query: GetPull) -> CommandResult[PullStep]:
        pull = self.pulls.by_id.get(query.pull_id)
        if pull is None:
            return CommandResult.refuse("engine.unknown_pull", f"no pull {query.pull_id}", pull=query.pull_id)
        return CommandResult.done(PullStep(pull.view(), pull.state.value))

    def listing(self, query: ListPulls) -> CommandResult[PullList]:
        pulls = [p for p in self.pulls.by_id.values() if query.session_id in (None, p.session_id)]
        return CommandResult.done(PullList(tuple(p.view() for p in pulls if not p.is_finished)))

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        return [
            {"kind": WitnessFor.PULL.value, "target_id": p.id, "action": REMOVAL_WITNESS}
            for p in self.pulls.by_id.values()
            if p.state is P.AWAITING_WITNESS and p.actor.id == user_id
        ]

    def search(self, query: SearchMedications) -> CommandResult[MedicationMatches]:
        with self.ctx.store.read() as reader:
            formulary = reader.formulary()
        found = search_medications(self.ctx.rules.policy, query.text, formulary)  # raises policy.search_too_short
        pockets: dict[str, list[str]] = {}
        for slot in self.ctx.topology.slots.values():
            if slot.item_id is not None:
                pockets.setdefault(slot.item_id, []).append(slot.pocket_id)
        matches = tuple((m, tuple(pockets.get(m.id, []))) for m in found.matches)
        return CommandResult.done(MedicationMatches(found.unique, matches))

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, **p.view()} for p in self.pulls.by_id.values() if not p.is_finished]

    # --- commands -----------------------------------------------------------------------------------------------

    async def start(self, command: StartPull) -> CommandResult[PullStep]:
        ctx = self.ctx
        with ctx.store.read() as reader:
            known = reader.patient_exists(command.patient_id)
            admitted = known and reader.patient_is_admitted(command.patient_id)
        if not known:
            return CommandResult.refuse("engine.unknown_patient", f"no patient {command.patient_id}",
                                        patient=command.patient_id)  # fmt: skip
        if not admitted:
            return CommandResult.refuse(
                "engine.patient_not_admitted",
                f"{command.patient_id} has no active admission (discharged or cancelled): no removal for them",
                patient=command.patient_id,
            )
        self.pulls.policy, self.pulls.settings = ctx.rules.policy, ctx.rules.machines
        pull = self.pulls.start(f"PULL-{uuid.uuid4().hex[:12]}", actor=ctx.user(), session_id=ctx.session.session_id)
        decision = pull.select_patient(now=ctx.now(), patient_id=command.patient_id)
        if decision.refused:  # never started: nothing of it is kept, so no id comes back
            ctx.recorder.commit(decision)
            self._forget(pull)
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal)
        return self._result(pull, decision, ctx.recorder.commit(decision, journal=[self._journal(pull)]))

    async def select_item(self, command: SelectItem) -> CommandResult[PullStep]:
        pull = self._mine(command.pull_id)
        if isinstance(pull, CommandResult):
            return pull
        ctx = self.ctx
        with ctx.store.read() as reader:
            item = self._item(reader, pull, command)
        if isinstance(item, CommandResult):
            return item
        decision = pull.select_item(now=ctx.now(), item=item)
        return await self._step(pull, decision)

    def _item(self, reader: CabinetReader, pull: Pull, command: SelectItem) -> PullItem | CommandResult[PullStep]:
        ctx = self.ctx
        order = None
        item_id = command.item_id
        if command.order_id is not None:
            order = reader.order(command.order_id)
            if order is None:
                return CommandResult.refuse("engine.unknown_order", f"no order {command.order_id}",
                                            order=command.order_id)  # fmt: skip
            item_id = order.item_id
        if item_id is None:
            return CommandResult.refuse("engine.item_not_stocked", "choose an order or an item")
        medication = reader.medication(item_id)
        slots = [s for s in ctx.topology.slots.values()
                 if s.item_id == item_id and command.pocket_id in (None, s.pocket_id)]  # fmt: skip
        if medication is None or not slots:
            return CommandResult.refuse("engine.item_not_stocked", f"this cabinet holds no {item_id}", item=item_id)
        today = ctx.now().date()
        stocked = [s for s in slots if reader.usable_lots(s.pocket_id, today)]
        slot = (stocked or slots)[0]
        on_hand = reader.on_hand(slot.pocket_id)
        if not stocked and on_hand > 0:  # everything there is expired or quarantined
            return CommandResult.refuse(
                "quarantine.no_usable_stock",
                f"pocket {slot.pocket_id} holds only expired or quarantined {medication.display_name}",
                pocket=slot.pocket_id,
            )
        open_rows = [
            d for d in reader.live_discrepancies() if d.status in OPEN_STATES and d.pocket_id == slot.pocket_id
        ]
        views = [DiscrepancyView(str(d.id), d.pocket_id, d.item_id, d.controlled, DiscrepancyState(d.status),
                                 d.raised_by or None) for d in open_rows]  # fmt: skip
        allergies = reader.patient_allergies(pull.patient_id) if pull.patient_id else ()
        return PullItem(
            medication=medication,
            pocket_id=slot.pocket_id,
            compartment_id=ctx.topology.innermost(slot.pocket_id),
            expected_on_hand=on_hand,
            profiled_area=ctx.topology.profiled,
            order=order,
            order_max_units=units_for_dose(order, medication) if order is not None else None,
            override_reason=command.override_reason,
            critical_override_mode=ctx.modes.critical_override,
            open_cs_discrepancy=medication.is_controlled
            and discrepancy_blocks(views, user_id=pull.actor.id, pocket_id=slot.pocket_id),
            undocumented_access=any(d.kind == UNDOCUMENTED_ACCESS for d in open_rows),
            allergy_conflicts=allergy_conflicts(allergies, medication),
            allergies_acknowledged=command.acknowledge_allergies,
        )

    async def enter_count(self, command: EnterCount) -> CommandResult[PullStep]:
        pull = self._mine(command.pull_id)
        if isinstance(pull, CommandResult):
            return pull
        return await self._step(pull, pull.count_entered(now=self.ctx.now(), count=command.count))

    async def scan_removed(self, command: ScanRemoved) -> CommandResult[PullStep]:
        """Read the removed package from the scanner or camera and let the pull judge it (a refusal is recorded)."""
        pull = self._mine(command.pull_id)
        if isinstance(pull, CommandResult):
            return pull
        ctx = self.ctx
        if pull.item is None or pull.state is not P.OPEN:
            decision = pull.package_scanned(now=ctx.now(), scan=None)
            return self._result(pull, decision, ctx.recorder.commit(decision))
        read = await ctx.packages.read(by_camera=command.by_camera, timeout_s=command.timeout_s)
        with ctx.store.read() as reader:
            check = check_package(reader, read.reading, pull.item.medication, today=ctx.now().date(),
                                  short_dated_warning=ctx.rules.machines.short_dated_warning,
                                  pocket_id=pull.item.pocket_id)  # fmt: skip
        decision = pull.package_scanned(now=ctx.now(), scan=check.package(), quarantined=check.quarantined)
        sealed = ctx.recorder.commit(decision, journal=[self._journal(pull)])
        return self._result(pull, decision, sealed, scan={**check.view(), "read_by": read.source})

    async def take(self, command: Take) -> CommandResult[PullStep]:
        pull = self._mine(command.pull_id)
        if isinstance(pull, CommandResult):
            return pull
        ctx = self.ctx
        item = pull.item
        lot_number = None
        if item is not None and isinstance(command.quantity, int) and command.quantity > 0:
            # Validate before anything is recorded: the usable lots must hold what is being taken.
            with ctx.store.read() as reader:
                lots = reader.usable_lots(item.pocket_id, ctx.now().date())
            plan = plan_removal(lots, command.quantity, pull.scanned.lot_number if pull.scanned else None)
            if plan is None:
                available = sum(lot.quantity for lot in lots)
                return CommandResult.refuse(
                    "inventory.negative_quantity",
                    f"pocket {item.pocket_id} holds {available} usable; cannot take {command.quantity}",
                    pocket=item.pocket_id,
                    on_hand=available,
                    change=-command.quantity,
                ).with_payload(PullStep(pull.view(), pull.state.value))
            lot_number = plan[0][0].lot_number
        return await self._step(pull, pull.take(now=ctx.now(), quantity=command.quantity, lot_number=lot_number))

    async def cancel(self, command: CancelPull) -> CommandResult[PullStep]:
        pull = self._mine(command.pull_id)
        if isinstance(pull, CommandResult):
            return pull
        return await self._step(pull, pull.cancel(now=self.ctx.now()))

    # --- the witness of a witnessed removal -------------------------------------------------------------------

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        pull = self._mine(target_id)
        if isinstance(pull, CommandResult):
            return pull
        if pull.state is not P.AWAITING_WITNESS:
            return CommandResult.refuse("engine.no_workflow", f"pull {target_id} is not waiting for a witness")
        return REMOVAL_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]:
        pull = self._mine(target_id)
        if isinstance(pull, CommandResult):
            return pull
        return await self._step(pull, pull.witness_signed(now=self.ctx.now(), signature=signature))

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction:
        return Reaction()  # the pull keeps waiting for a witness; the user may begin again or cancel it

    # --- one step -------------------------------------------------------------------------------------------------

    async def _step(self, pull: Pull, decision: Decision) -> CommandResult[PullStep]:
        """Record a step (with the pull's journal row); unlock once the machine is ready; end it if it ended."""
        ctx = self.ctx
        sealed = ctx.recorder.commit(decision, journal=[self._journal(pull)])
        if decision.accepted and pull.state is P.READY:
            return await self._unlock(pull, sealed)
        if pull.is_finished:
            sealed += await ctx.actuator.release(pull.id)
            self._finish(pull)
        return self._result(pull, decision, sealed)

    async def _unlock(self, pull: Pull, sealed: list[SealedEntry]) -> CommandResult[PullStep]:
        ctx = self.ctx
        assert pull.item is not None
        pocket_id = pull.item.pocket_id
        blocked = await ctx.actuator.precheck(pocket_id, pull.id)
        # Nothing moved: the pull stays ready. No step moves a ready pull on, so the user cancels it and starts
        # another once the compartment is serviced or accounted for.
        if blocked is not None:
            return CommandResult.refused(blocked, PullStep(pull.view(), pull.state.value, seqs(sealed)),
                                         pull_id=pull.id)  # fmt: skip
        requested = pull.unlock_requested(now=ctx.now(), session=ctx.session)
        if requested.refused:
            return self._result(pull, requested, sealed + ctx.recorder.commit(requested))
        unlocked = await ctx.actuator.unlock(pocket_id, workflow_id=pull.id, purpose=KIND,
                                             journal=[self._journal(pull)])  # fmt: skip
        sealed += unlocked.sealed
        if unlocked.ok:
            if ctx.compartments[pull.item.compartment_id].state is CompartmentState.OPEN:
                # Joined a pocket already open for this session (two items from one open matrix drawer): no
                # sensor edge will come, so the pull is open now, and its journal row says so.
                opened = pull.opened(now=ctx.now())
                sealed += ctx.recorder.commit(requested, opened, journal=[self._journal(pull)])
                return self._result(pull, opened, sealed, unlocked=unlocked.compartments)
            ctx.recorder.commit(requested)
            return self._result(pull, requested, sealed, unlocked=unlocked.compartments)
        failed = pull.unlock_failed(now=ctx.now())
        sealed += ctx.recorder.commit(requested, failed, journal=[JournalEnd(pull.id, pull.state.value)])
        sealed += await ctx.actuator.release(pull.id)
        self._finish(pull)
        payload = PullStep(pull.view(), pull.state.value, seqs(sealed))
        if unlocked.error is not None:
            compartments = {c.id: c.state.value for c in ctx.compartments.by_id.values()
                            if c.id in ctx.topology.unlock_chain[pocket_id]}  # fmt: skip
            return CommandResult.from_error(unlocked.error, payload, pull_id=pull.id, compartments=compartments)
        assert unlocked.refusal is not None
        return CommandResult.refused(unlocked.refusal, payload, pull_id=pull.id)

    def _result(
        self, pull: Pull, decision: Decision, sealed: list[SealedEntry] | None = None, **extra: Any
    ) -> CommandResult[PullStep]:
        payload = PullStep(pull.view(), decision.state.value, seqs(sealed or []), **extra)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)

    # --- the pocket moving ------------------------------------------------------------------------------------

    def on_compartment(self, workflow_id: str, event: CompartmentEvent, now: datetime) -> Reaction:
        pull = self.pulls.by_id[workflow_id]
        if pull.is_finished or pull.item is None or event.compartment_id != pull.item.compartment_id:
            return Reaction()  # an outer drawer of a lidded pocket: the pull follows its lid
        decisions: list[Decision] = []
        if event.kind is E.OPENED and pull.state is P.UNLOCKING:
            decisions.append(pull.opened(now=now))
        elif event.kind is E.OPENED_AND_CLOSED and pull.state is P.UNLOCKING:
            decisions += [pull.opened(now=now), pull.closed(now=now)]
        elif event.kind is E.CLOSED and pull.state in (P.OPEN, P.TAKEN):
            decisions.append(pull.closed(now=now))
        elif event.kind is E.EXPIRED and pull.state is P.UNLOCKING:
            decisions.append(pull.unlock_expired(now=now))
        elif event.kind is E.TAMPERED:
            decisions.append(pull.abandon(now=now, reason="tamper", accessed=True))
        return self._react(pull, decisions)

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        reaction = Reaction()
        for pull in list(self.pulls.by_id.values()):
            if pull.session_id == session_id and not pull.is_finished:
                reaction.merge(self._react(pull, [pull.abandon(now=now, reason=reason, accessed=False)]))
        return reaction

    def on_tick(self, now: datetime) -> Reaction:
        """A pocket opened and not closed out by the end of the shift it was opened in is an undocumented access."""
        reaction = Reaction()
        policy = self.ctx.rules.policy
        for pull in list(self.pulls.by_id.values()):
            started = pull.opened_at
            if pull.state in AFTER_OPEN and started is not None and now >= discrepancy_deadline(policy, started):
                reaction.merge(self._react(pull, [pull.abandon(now=now, reason="shift_end", accessed=True)]))
        return reaction

    def _react(self, pull: Pull, decisions: list[Decision]) -> Reaction:
        if not decisions:
            return Reaction()
        if pull.is_finished:
            self._finish(pull)
            return Reaction(decisions, [JournalEnd(pull.id, pull.state.value)], [pull.id])
        return Reaction(decisions, [self._journal(pull)])

    # --- after a restart --------------------------------------------------------------------------------------

    def released_at_stop(self, entry: JournalEntry) -> tuple[str, ...]:
        """A pull closed without a take had its pocket shut and latched: an opening counted while the controller
        was down was forced, whatever the pull's own discrepancy says."""
        return () if entry.state == P.CLOSED_UNACCOUNTED.value else entry.compartments

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        d = entry.details
        record = PullRecord(
            pull_id=entry.workflow_id,
            state=PullState(entry.state),
            actor_id=entry.actor_id,
            session_id=entry.session_id,
            patient_id=entry.patient_id,
            order_id=d.get("order_id"),
            item_id=entry.item_id,
            pocket_id=entry.pocket_id,
            expected_on_hand=d.get("expected_on_hand"),
            taken=d.get("taken"),
            lot_number=d.get("lot_number"),
            override=bool(d.get("override")),
            reason=d.get("reason"),
            blind_count=d.get("blind_count"),
            witness_id=d.get("witness_id"),
            scanned=d.get("scanned"),
        )
        accessed = evidence.may_have_opened(entry.compartments)
        outcomes = recover_pull(record, now=now, accessed=accessed)
        reaction = Reaction(journal=[JournalEnd(entry.workflow_id, "recovered")])
        reaction.decisions.append(Decision("recover", True, record.state, record.state, outcomes))
        return reaction

    # --- bookkeeping --------------------------------------------------------------------------------------------

    def _journal(self, pull: Pull) -> JournalWrite:
        if pull.is_finished:
            return JournalEnd(pull.id, pull.state.value)
        item = pull.item
        authorisation = pull.authorisation
        scanned = pull.scanned
        details: dict[str, Any] = {
            "order_id": item.order.id if item and item.order else None,
            "expected_on_hand": item.expected_on_hand if item else None,
            "taken": pull.taken,
            "lot_number": pull.lot_number,
            "override": authorisation.is_override if authorisation else False,
            "reason": authorisation.reason.value if authorisation and authorisation.reason else None,
            "blind_count": pull.counted,
            "witness_id": pull.signature.witness_id if pull.signature else None,
            "scanned": {"ndc": scanned.ndc, "lot": scanned.lot_number, "serial": scanned.serial} if scanned else None,
        }
        chain = self.ctx.topology.unlock_chain.get(item.pocket_id, ()) if item else ()
        return JournalEntry(
            workflow_id=pull.id,
            kind=KIND,
            actor_id=pull.actor.id,
            session_id=pull.session_id,
            state=pull.state.value,
            started_at=pull.started_at or self.ctx.now(),
            patient_id=pull.patient_id,
            item_id=item.medication.id if item else None,
            pocket_id=item.pocket_id if item else None,
            compartments=tuple(chain),
            details=details,
        )

    def _finish(self, pull: Pull) -> None:
        self._finished[pull.id] = None
        while len(self._finished) > KEEP_FINISHED:
            old, _ = self._finished.popitem(last=False)
            done = self.pulls.by_id.get(old)
            if done is not None:
                self._forget(done)

    def _forget(self, pull: Pull) -> None:
        self.pulls.detach(pull)
        self.pulls.by_id.pop(pull.id, None)
