"""Discrepancies at the cabinet: the ones pulls (and later counts) raised, from open to pharmacist-reviewed.

Responsible for: loading every discrepancy row not yet reviewed into the ``Discrepancies`` machine pool (the engine
writes the row with the ``DISCREPANCY_RAISED`` entry; rows are picked up on every use, so after a restart too);
``ResolveDiscrepancy`` by the logged-in user with a reason code and, when policy lists it, a witness through
``witness.py``; ``ReviewDiscrepancy`` by a pharmacist; ``ListDiscrepancies``; escalation on ``Tick`` past the
deadline; every row status change (``escalated``, ``resolved``, ``reviewed``) in the transaction of its entry;
and the engine's ``discrepancy_gate``: the pull's ``open_cs_discrepancy`` is ``discrepancy_blocks`` over the
open rows.

Not responsible for: the rules (``controller.fsm.workflows.discrepancy``) or stock adjustments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import (
    ListDiscrepancies,
    ResolveDiscrepancy,
    ReviewDiscrepancy,
    WitnessFor,
)
from controller.engine.witness import WitnessDesk, record
from controller.fsm.base import Decision, WitnessSignature
from controller.fsm.workflows.discrepancy import (
    RESOLUTION_WITNESS,
    Discrepancies,
    Discrepancy,
    DiscrepancyReason,
    DiscrepancyState,
)
from controller.store.ledger import SealedEntry
from controller.store.models import DiscrepancyRow, LedgerEntryRow

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine

D = DiscrepancyState
STATUS = {D.OPEN: "open", D.ESCALATED: "escalated", D.RESOLVED: "resolved", D.REVIEWED: "reviewed"}
LIVE = ("open", "escalated", "resolved")


@dataclass(frozen=True, slots=True)
class _Resolution:
    """A resolution entered and waiting for its witness."""

    resolver_id: str
    reason: str
    note: str | None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DiscrepancyDesk:
    def __init__(self, engine: CabinetEngine, witness: WitnessDesk) -> None:
        self.engine = engine
        self.witness = witness
        self.pool = Discrepancies(engine.policy)
        self.waiting: dict[str, _Resolution] = {}
        witness.add_target(WitnessFor.DISCREPANCY, self)
        engine.register(ResolveDiscrepancy, self.resolve)
        engine.register(ReviewDiscrepancy, self.review)
        engine.register(ListDiscrepancies, self.listing)

    # --- loading ------------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Attach every row not yet reviewed that the pool does not hold (new since the last look, or after a
        restart), in the state its row says."""
        with self.engine.db.read() as session:
            rows = list(
                session.execute(
                    select(DiscrepancyRow)
                    .where(DiscrepancyRow.cabinet_id == self.engine.cabinet_id, DiscrepancyRow.status.in_(LIVE))
                    .order_by(DiscrepancyRow.id)
                ).scalars()
            )
            rows = [r for r in rows if str(r.id) not in self.pool.by_id]
            resolutions = self._resolutions(session, [r.id for r in rows if r.status == "resolved"])
        for row in rows:
            d = Discrepancy(
                str(row.id),
                raised_at=_aware(row.raised_at),
                pocket_id=row.pocket_id,
                item_id=row.item_id,
                controlled=row.controlled,
                expected=row.expected,
                counted=row.counted,
                raised_by=row.raised_by or None,
                policy=self.engine.policy,
            )
            d.deadline = _aware(row.deadline)
            initial = {"open": D.OPEN, "escalated": D.ESCALATED, "resolved": D.RESOLVED}[row.status]
            if initial is D.ESCALATED:
                d.escalated_at = d.deadline
            if initial is D.RESOLVED:
                d.resolver_id = row.resolved_by
                d.witness_id, reason = resolutions.get(row.id, (None, None))
                d.reason = DiscrepancyReason(reason) if reason else DiscrepancyReason.UNRESOLVED_UNKNOWN
            self.pool.attach(d, initial=initial)
            self.pool.by_id[d.id] = d

    def _resolutions(self, session: DbSession, ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
        """(witness, reason) of resolved rows, from their ``DISCREPANCY_RESOLVED`` entries."""
        if not ids:
            return {}
        found: dict[int, tuple[str | None, str | None]] = {}
        bodies = session.execute(
            select(LedgerEntryRow.body).where(
                LedgerEntryRow.cabinet_id == self.engine.cabinet_id,
                LedgerEntryRow.event_type == "discrepancy.resolved",
            )
        ).scalars()
        for body in bodies:
            doc = json.loads(body)
            key = doc["details"].get("discrepancy_id")
            if key is not None and key.isdigit() and int(key) in ids:
                found[int(key)] = (doc["witness_id"], doc["reason_code"])
        return found

    def blocks(self, user_id: str, pocket_id: str) -> bool:
        self.sync()
        return self.pool.blocks(user_id=user_id, pocket_id=pocket_id)

    def _get(self, discrepancy_id: str) -> Discrepancy | CommandResult:
        self.sync()
        found = self.pool.by_id.get(discrepancy_id)
        if found is None:
            return CommandResult.refuse(
                "engine.unknown_discrepancy",
                f"no discrepancy {discrepancy_id} waiting at this cabinet",
                discrepancy=discrepancy_id,
            )
        return found

    # --- commands -----------------------------------------------------------------------------------------------

    async def resolve(self, command: ResolveDiscrepancy) -> CommandResult:
        self.witness.reconcile()
        found = self._get(command.discrepancy_id)
        if isinstance(found, CommandResult):
            return found
        resolver = self.engine.session.user
        assert resolver is not None
        # Without a signature first: every other rule (privilege, reason) answers now; a missing witness
        # starts the witness step and the resolution waits for it.
        decision = found.resolve(
            now=self.engine.clock.now(), resolver=resolver, signature=None, reason=command.reason, note=command.note
        )
        if decision.accepted:
            return self._done(found, decision)
        assert decision.refusal is not None
        if decision.refusal.code != "policy.witness_required" or found.state not in (D.OPEN, D.ESCALATED):
            return self._result(decision, [], found)
        self.waiting[found.id] = _Resolution(resolver.id, str(command.reason), command.note)
        begun = self.witness.begin(WitnessFor.DISCREPANCY, found.id)
        if not begun.ok:
            self.waiting.pop(found.id, None)
            return begun
        return CommandResult.success(
            state="awaiting_witness", discrepancy=self._view(found), witness_step=begun.data["witness_step"]
        )

    async def review(self, command: ReviewDiscrepancy) -> CommandResult:
        self.witness.reconcile()
        found = self._get(command.discrepancy_id)
        if isinstance(found, CommandResult):
            return found
        reviewer = self.engine.session.user
        assert reviewer is not None
        decision = found.review(now=self.engine.clock.now(), reviewer=reviewer, note=command.note)
        if decision.refused:
            return self._result(decision, [], found)
        return self._done(found, decision)

    async def listing(self, command: ListDiscrepancies) -> CommandResult:
        self.witness.reconcile()
        self.sync()
        return CommandResult.success(
            discrepancies=[self._view(d) for d in self.pool.by_id.values() if d.state is not D.REVIEWED]
        )

    # --- the witness step -----------------------------------------------------------------------------------------

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        waiting = self.waiting.get(target_id or "")
        user = self.engine.session.user
        if waiting is None or user is None or waiting.resolver_id != user.id:
            return CommandResult.refuse(
                "engine.no_workflow", f"no resolution of discrepancy {target_id} is waiting for a witness"
            )
        assert target_id is not None
        return target_id, RESOLUTION_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult:
        waiting = self.waiting.pop(target_id)
        found = self.pool.by_id[target_id]
        resolver = self.engine.session.user
        assert resolver is not None and resolver.id == waiting.resolver_id
        decision = found.resolve(
            now=self.engine.clock.now(),
            resolver=resolver,
            signature=signature,
            reason=waiting.reason,
            note=waiting.note,
        )
        if decision.refused:
            return self._result(decision, [], found)
        return self._done(found, decision)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]:
        self.waiting.pop(target_id, None)  # the discrepancy stays open; nothing was recorded yet
        return []

    # --- time -----------------------------------------------------------------------------------------------------

    def tick(self, now: datetime) -> int:
        self.sync()
        written = 0
        for d in list(self.pool.by_id.values()):
            if d.state is D.OPEN:
                decision = d.tick(now=now)
                if decision.outcomes:
                    written += len(self._write(d, decision))
        return written

    # --- recording ----------------------------------------------------------------------------------------------

    def _write(self, d: Discrepancy, decision: Decision) -> list[SealedEntry]:
        status = STATUS[D(d.state)]
        now = self.engine.clock.now()

        def apply(session: DbSession, sealed: list[SealedEntry]) -> None:
            row = session.get(DiscrepancyRow, int(d.id))
            assert row is not None
            row.status = status
            if status == "resolved":
                row.resolved_by, row.resolved_at = d.resolver_id, now
            session.flush()

        return record(self.engine, decision.outcomes, apply)

    def _done(self, d: Discrepancy, decision: Decision) -> CommandResult:
        sealed = self._write(d, decision)
        if d.state is D.REVIEWED:
            self.pool.detach(d)
            del self.pool.by_id[d.id]
        return self._result(decision, sealed, d)

    def _view(self, d: Discrepancy) -> dict[str, Any]:
        return {
            "discrepancy_id": d.id,
            "state": D(d.state).value,
            "pocket_id": d.pocket_id,
            "item_id": d.item_id,
            "controlled": d.controlled,
            "raised_by": d.raised_by,
            "deadline": d.deadline.isoformat(),
            "escalated": d.escalated_at is not None,
            "resolver_id": d.resolver_id,
            "witness_id": d.witness_id,
            "witness_required": d.witness_required,
            "awaiting_witness": d.id in self.waiting,
        }

    def _result(self, decision: Decision, sealed: list[SealedEntry], d: Discrepancy) -> CommandResult:
        data: dict[str, Any] = {
            "state": decision.state.value,
            "ledger_seqs": [e.seq for e in sealed],
            "discrepancy": self._view(d),
        }
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)
