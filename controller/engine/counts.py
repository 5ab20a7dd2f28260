"""Cycle counts and shift-change counts of controlled pockets, blind, end to end.

Responsible for: listing the pockets (every controlled pocket of the cabinet unless the command names them), with
what the store says each holds (never shown: ``Count.view`` is blind); feeding each entered count to the ``Count``
machine; recording every outcome in one transaction each (``count.entered`` per pocket, and for a mismatch a
``discrepancy.raised`` entry with its discrepancy row through the engine's recorder, the same repository the pull
uses). Not responsible for resolving discrepancies (the discrepancy module) or opening drawers: the counter looks
through the drawers a pharmacist or the shift's nurses open with their own access (a seam for unlocking each pocket
with ``restock.unlock_pocket`` is left for the UI flow).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from controller.engine.commands import CommandResult
from controller.engine.commands_pharmacy import EnterPocketCount, StartCount, StopCount
from controller.engine.restock import commit
from controller.fsm.base import Decision
from controller.fsm.workflows.count import Count, CountLine, Counts, CountState
from controller.store import engine_state as state

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine


class CountWorkflow:
    def __init__(self, engine: CabinetEngine) -> None:
        self.engine = engine
        self.counts = Counts()
        self.current: Count | None = None

    def register(self) -> None:
        self.engine.register(StartCount, self.start)
        self.engine.register(EnterPocketCount, self.enter)
        self.engine.register(StopCount, self.stop)

    def _result(self, count: Count, decision: Decision) -> CommandResult:
        sealed = commit(self.engine, decision.outcomes)
        data = {"count": count.view(), "state": count.state.value, "ledger_seqs": [s.seq for s in sealed]}
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)

    async def start(self, command: StartCount) -> CommandResult:
        e = self.engine
        if self.current is not None and self.current.state is CountState.COUNTING:
            return CommandResult.refuse("fsm.event_not_allowed", f"count {self.current.id} is still open")
        lines: list[CountLine] = []
        with e.db.read() as session:
            for slot in e.slots.values():
                if slot.item_id is None or (
                    command.pocket_ids is not None and slot.pocket_id not in command.pocket_ids
                ):
                    continue
                medication = state.get_medication(session, slot.item_id)
                if medication is None or (command.pocket_ids is None and not medication.is_controlled):
                    continue
                lines.append(
                    CountLine(
                        slot.pocket_id,
                        slot.item_id,
                        state.pocket_on_hand(session, slot.pocket_id),
                        controlled=medication.is_controlled,
                        schedule_ii=medication.dea_schedule.is_schedule_ii,
                    )
                )
        if not lines:
            return CommandResult.refuse("engine.item_not_stocked", "no pockets to count")
        user = e.session.user
        assert user is not None
        count = self.counts.start(f"CNT-{uuid.uuid4().hex[:12]}", actor=user, kind=command.kind, lines=tuple(lines))
        self.current = count
        return self._result(count, count.begin(now=e.clock.now()))

    async def enter(self, command: EnterPocketCount) -> CommandResult:
        count = self.current
        if count is None:
            return CommandResult.refuse("engine.no_workflow", "no count is in progress; start one first")
        decision = count.count_entered(now=self.engine.clock.now(), pocket_id=command.pocket_id, count=command.count)
        return self._result(count, decision)

    async def stop(self, command: StopCount) -> CommandResult:
        count = self.current
        if count is None:
            return CommandResult.refuse("engine.no_workflow", "no count is in progress")
        return self._result(count, count.stop(now=self.engine.clock.now()))
