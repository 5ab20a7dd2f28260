"""Discrepancies at the cabinet: the ones pulls, counts, restocks and undocumented accesses raised, from open to
pharmacist-reviewed.

Responsible for: loading every discrepancy row not yet reviewed into the ``Discrepancies`` machine pool (the
recorder writes the row with the ``discrepancy.raised`` entry; rows are picked up on every use, so after a restart
too); ``ResolveDiscrepancy`` by the logged-in user with a reason code and, when required, a witness (a resolution
waiting for its witness is journaled, so it survives a logoff and a restart on the user's pending work); an
undocumented access is resolved only once its pocket has been counted since it was raised (the machine refuses
otherwise); ``ReviewDiscrepancy`` by a pharmacist; ``ListDiscrepancies``; escalation on ``Tick`` past the deadline;
every row status change in the transaction of its entry.

Not responsible for: the rules (``controller.fsm.workflows.discrepancy``) or stock adjustments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.domain.medication import Medication
from controller.engine.commands.clinical import (
    DiscrepancyList,
    DiscrepancyStep,
    ListDiscrepancies,
    ResolveDiscrepancy,
    ReviewDiscrepancy,
    WitnessFor,
)
from controller.engine.context import EngineContext
from controller.engine.recording import JournalEnd
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.workflows.discrepancy import (
    RESOLUTION_WITNESS,
    UNDOCUMENTED_ACCESS,
    Discrepancies,
    Discrepancy,
    DiscrepancyReason,
    DiscrepancyState,
)
from controller.store.cabinet_store import CabinetReader, CabinetWriter, JournalEntry
from controller.store.ledger import SealedEntry

D = DiscrepancyState
STATUS = {D.OPEN: "open", D.ESCALATED: "escalated", D.RESOLVED: "resolved", D.REVIEWED: "reviewed"}
INITIAL = {"open": D.OPEN, "escalated": D.ESCALATED, "resolved": D.RESOLVED}
KIND = JournalKind.RESOLUTION.value


@dataclass(frozen=True, slots=True)
class Resolution:
    """A resolution entered and waiting for its witness."""

    resolver_id: str
    reason: str
    note: str | None
    session_id: int


class DiscrepancyHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.pool = Discrepancies(ctx.rules.policy)
        self.waiting: dict[str, Resolution] = {}
        r = ctx.registry
        r.add(self)
        r.command(ResolveDiscrepancy, self.resolve)
        r.command(ReviewDiscrepancy, self.review)
        r.query(ListDiscrepancies, self.listing)
        ctx.witness.add_target(WitnessFor.DISCREPANCY, self)

    # --- loading ------------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Attach every row not yet reviewed that the pool does not hold (new since the last look, or after a
        restart), in the state its row says."""
        with self.ctx.store.read() as reader:
            rows = [r for r in reader.live_discrepancies() if str(r.id) not in self.pool.by_id]
            resolutions = reader.resolutions([r.id for r in rows if r.status == "resolved"])
        for row in rows:
            d = Discrepancy(str(row.id), raised_at=row.raised_at, pocket_id=row.pocket_id, item_id=row.item_id,
                            controlled=row.controlled, expected=row.expected, counted=row.counted,
                            raised_by=row.raised_by or None, policy=self.ctx.rules.policy, kind=row.kind,
                            workflow_id=row.workflow_id)  # fmt: skip
            d.deadline = row.deadline
            initial = INITIAL[row.status]
            if initial is D.ESCALATED:
                d.escalated_at = d.deadline
            if initial is D.RESOLVED:
                d.resolver_id = row.resolved_by
                d.witness_id, reason = resolutions.get(row.id, (None, None))
                d.reason = DiscrepancyReason(reason) if reason else DiscrepancyReason.UNRESOLVED_UNKNOWN
            self.pool.attach(d, initial=initial)
            self.pool.by_id[d.id] = d

    def _get(self, discrepancy_id: str) -> Discrepancy | CommandResult[Any]:
        self.sync()
        found = self.pool.by_id.get(discrepancy_id)
        if found is None:
            return CommandResult.refuse("engine.unknown_discrepancy", f"no discrepancy {discrepancy_id} waiting at "
                                        "this cabinet", discrepancy=discrepancy_id)  # fmt: skip
        return found

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.waiting

    # --- commands -----------------------------------------------------------------------------------------------

    async def resolve(self, command: ResolveDiscrepancy) -> CommandResult[DiscrepancyStep]:
        found = self._get(command.discrepancy_id)
        if isinstance(found, CommandResult):
            return found
        ctx = self.ctx
        resolver = ctx.user()
        counted_seq = self._counted_seq(found)
        # Without a signature first: every other rule (privilege, count, reason) answers now; a missing witness
        # starts the witness step and the resolution waits for it.
        decision = found.resolve(now=ctx.now(), resolver=resolver, signature=None, reason=command.reason,
                                 note=command.note, counted_seq=counted_seq)  # fmt: skip
        if decision.accepted:
            return self._done(found, decision)
        assert decision.refusal is not None
        if decision.refusal.code != "policy.witness_required" or found.state not in (D.OPEN, D.ESCALATED):
            ctx.recorder.commit(decision)
            return self._result(decision, [], found)
        previous = self.waiting.get(found.id)
        waiting = Resolution(resolver.id, str(command.reason), command.note, ctx.session.session_id)
        self.waiting[found.id] = waiting
        ctx.recorder.commit(decision, journal=[self._journal(found, waiting)])
        begun = ctx.witness.begin(WitnessFor.DISCREPANCY, found.id)
        if begun.payload is None:
            if previous is None:
                self.waiting.pop(found.id, None)
                ctx.recorder.commit(journal=[JournalEnd(f"resolve-{found.id}", "not_begun")])
            else:  # the resolution already waiting (its step may be the open one) stays as it was entered
                self.waiting[found.id] = previous
                ctx.recorder.commit(journal=[self._journal(found, previous)])
            return begun.refusal()
        return CommandResult.done(DiscrepancyStep("awaiting_witness", self._view(found),
                                                  witness_step=begun.payload.witness_step))  # fmt: skip

    def _counted_seq(self, found: Discrepancy) -> int | None:
        if found.kind != UNDOCUMENTED_ACCESS:
            return None
        with self.ctx.store.read() as reader:
            row = reader.discrepancy(int(found.id))
            return reader.counted_since(found.pocket_id, row.ledger_seq) if row is not None else None

    async def review(self, command: ReviewDiscrepancy) -> CommandResult[DiscrepancyStep]:
        found = self._get(command.discrepancy_id)
        if isinstance(found, CommandResult):
            return found
        decision = found.review(now=self.ctx.now(), reviewer=self.ctx.user(), note=command.note)
        if decision.refused:
            self.ctx.recorder.commit(decision)
            return self._result(decision, [], found)
        return self._done(found, decision)

    def listing(self, query: ListDiscrepancies) -> CommandResult[DiscrepancyList]:
        with self.ctx.store.read() as reader:
            views = [self._row_view(reader, row.id) for row in reader.live_discrepancies()]
            names = {item: _name(reader.medication(item), item) for item in {v["item_id"] for v in views} if item}
        return CommandResult.done(DiscrepancyList(tuple({**v, "item_name": names.get(v["item_id"])} for v in views)))

    # --- the witness step -----------------------------------------------------------------------------------------

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        waiting = self.waiting.get(target_id)
        user = self.ctx.session.user
        if waiting is None or user is None or waiting.resolver_id != user.id:
            return CommandResult.refuse("engine.no_workflow", f"no resolution of discrepancy {target_id} is waiting "
                                        "for a witness")  # fmt: skip
        return RESOLUTION_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]:
        waiting = self.waiting.pop(target_id)
        found = self.pool.by_id[target_id]
        resolver = self.ctx.user()
        assert resolver.id == waiting.resolver_id
        decision = found.resolve(now=self.ctx.now(), resolver=resolver, signature=signature, reason=waiting.reason,
                                 note=waiting.note, counted_seq=self._counted_seq(found))  # fmt: skip
        if decision.refused:
            self.ctx.recorder.commit(decision, journal=[JournalEnd(f"resolve-{found.id}", "refused")])
            return self._result(decision, [], found)
        return self._done(found, decision)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction:
        return Reaction()  # the resolution keeps waiting: on the user's pending work until signed or resolved again

    # --- time and restarts --------------------------------------------------------------------------------------

    def on_tick(self, now: datetime) -> Reaction:
        self.sync()
        recorded: list[SealedEntry] = []
        for d in list(self.pool.by_id.values()):
            if d.state is D.OPEN:
                decision = d.tick(now=now)
                if decision.outcomes:
                    recorded += self._write(d, decision)
        return Reaction(recorded=recorded)

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        """A resolution waiting for its witness when the controller stopped waits again."""
        details = entry.details
        discrepancy_id = str(details["discrepancy_id"])
        self.sync()
        if discrepancy_id in self.pool.by_id and self.pool.by_id[discrepancy_id].state in (D.OPEN, D.ESCALATED):
            self.waiting[discrepancy_id] = Resolution(entry.actor_id, str(details["reason"]), details.get("note"),
                                                      entry.session_id)  # fmt: skip
            return Reaction()
        return Reaction(journal=[JournalEnd(entry.workflow_id, "recovered")])

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        return [{"kind": WitnessFor.DISCREPANCY.value, "target_id": key, "action": RESOLUTION_WITNESS}
                for key, waiting in self.waiting.items() if waiting.resolver_id == user_id]  # fmt: skip

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, "discrepancy_id": key, "resolver_id": w.resolver_id} for key, w in self.waiting.items()]

    # --- recording ----------------------------------------------------------------------------------------------

    def _write(self, d: Discrepancy, decision: Decision) -> list[SealedEntry]:
        status = STATUS[D(d.state)]

        def apply(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            tx.set_discrepancy_status(int(d.id), status, by=d.resolver_id if status == "resolved" else None)

        journal = [JournalEnd(f"resolve-{d.id}", status)] if status != "open" else []
        return self.ctx.recorder.commit(decision, journal=journal, then=apply)

    def _done(self, d: Discrepancy, decision: Decision) -> CommandResult[DiscrepancyStep]:
        sealed = self._write(d, decision)
        self.waiting.pop(d.id, None)
        result = self._result(decision, sealed, d)
        if d.state is D.REVIEWED:
            self.pool.detach(d)
            del self.pool.by_id[d.id]
        return result

    def _journal(self, d: Discrepancy, waiting: Resolution) -> JournalEntry:
        details = {"discrepancy_id": d.id, "reason": waiting.reason, "note": waiting.note}
        return JournalEntry(workflow_id=f"resolve-{d.id}", kind=KIND, actor_id=waiting.resolver_id,
                            session_id=waiting.session_id, state="awaiting_witness", started_at=self.ctx.now(),
                            item_id=d.item_id, pocket_id=d.pocket_id, details=details)  # fmt: skip

    def _view(self, d: Discrepancy) -> dict[str, Any]:
        return {
            "discrepancy_id": d.id,
            "state": D(d.state).value,
            "kind": d.kind,
            "workflow_id": d.workflow_id,
            "pocket_id": d.pocket_id,
            "item_id": d.item_id,
            "expected": d.expected,
            "counted": d.counted,
            "controlled": d.controlled,
            "raised_by": d.raised_by,
            "deadline": d.deadline.isoformat(),
            "escalated": d.escalated_at is not None,
            "resolver_id": d.resolver_id,
            "witness_id": d.witness_id,
            "witness_required": d.witness_required,
            "count_required": d.kind == UNDOCUMENTED_ACCESS,
            "awaiting_witness": d.id in self.waiting,
        }

    def _row_view(self, reader: CabinetReader, row_id: int) -> dict[str, Any]:
        d = self.pool.by_id.get(str(row_id))
        if d is not None:
            return self._view(d)
        row = reader.discrepancy(row_id)
        assert row is not None
        return {"discrepancy_id": str(row.id), "state": row.status, "kind": row.kind, "workflow_id": row.workflow_id,
                "pocket_id": row.pocket_id, "item_id": row.item_id, "expected": row.expected, "counted": row.counted,
                "controlled": row.controlled,
                "raised_by": row.raised_by or None, "deadline": row.deadline.isoformat(),
                "escalated": row.status == "escalated", "resolver_id": row.resolved_by, "witness_id": None,
                "witness_required": None, "count_required": row.kind == UNDOCUMENTED_ACCESS,
                "awaiting_witness": str(row.id) in self.waiting}  # fmt: skip

    def _result(self, decision: Decision, sealed: list[SealedEntry], d: Discrepancy) -> CommandResult[DiscrepancyStep]:
        payload = DiscrepancyStep(decision.state.value, self._view(d), seqs(sealed))
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)


def _name(medication: Medication | None, item_id: str) -> str:
    return medication.display_name if medication is not None else item_id
