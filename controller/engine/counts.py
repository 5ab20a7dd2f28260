"""Cycle counts and shift-change counts of controlled pockets, blind, end to end: each pocket unlocked in turn.

Responsible for: listing the pockets (every controlled pocket of the cabinet unless the command names them, in
the cabinet's drawer and pocket order), with what the store says each holds (never shown: ``Count.view`` is
blind); unlocking the pockets one after the other, in that order, through the same unlock path a restock uses
(``restock.unlock_pocket``: the drawer, then the lid of a lidded pocket, with an ``UnlockGrant`` naming the
count), the next one as soon as the previous one is counted; telling the ``Count`` machine that a pocket was
opened once the sensors have shown it open for this count (the compartment's ``drawer.opened`` entry, written
by the engine from the snapshot, names the count as its workflow; the count entry names that entry), or at once
when the next pocket sits in a matrix drawer already open for this count; feeding each entered count to the
machine, which refuses a pocket that was never opened; recording every outcome in one transaction each
(``count.entered`` per pocket, and for a mismatch a ``discrepancy.raised`` entry with its discrepancy row through
the engine's recorder, the same repository the pull uses); and, when the count ends, locking again whatever was
released for it and never opened.

Not responsible for: the rules (the ``Count`` machine), resolving discrepancies (the discrepancy module), or the
sensor poll loop (each count command reads one fresh snapshot first, so it sees what the person did).

``StartCount`` fails with the unlock's code when its first pocket cannot be unlocked (the count exists and waits:
``UnlockCountPocket`` or ``StopCount``); an ``EnterPocketCount`` that was recorded succeeds even when the next
pocket then cannot be unlocked, and says so under ``next_unlock``.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from controller.domain.transactions import EventType
from controller.engine.commands import CommandResult
from controller.engine.commands_pharmacy import EnterPocketCount, StartCount, StopCount, UnlockCountPocket
from controller.engine.restock import commit, released_for, unlock_pocket
from controller.errors import ControllerError
from controller.fsm.base import Decision
from controller.fsm.compartment import CompartmentState
from controller.fsm.workflows.count import Count, CountLine, Counts, CountState
from controller.store import engine_state as state
from controller.store.models import LedgerEntryRow, LedgerHeadRow

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine

PURPOSE = "count"


class CountWorkflow:
    def __init__(self, engine: CabinetEngine) -> None:
        self.engine = engine
        self.counts = Counts()
        self.current: Count | None = None
        self.unlocked_after: dict[str, int] = {}  # pocket -> ledger seq just before its unlock was commanded

    def register(self) -> None:
        self.engine.register(StartCount, self.start)
        self.engine.register(EnterPocketCount, self.enter)
        self.engine.register(UnlockCountPocket, self.unlock_next)
        self.engine.register(StopCount, self.stop)

    def _result(self, count: Count, decision: Decision, before: CommandResult | None = None) -> CommandResult:
        sealed = commit(self.engine, decision.outcomes)
        seqs = [*(before.data.get("ledger_seqs", []) if before else []), *(s.seq for s in sealed)]
        data = {"count": count.view(), "state": count.state.value, "ledger_seqs": seqs}
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, **data)
        return CommandResult(True, data)

    # --- commands --------------------------------------------------------------------------------------------------

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
        self.unlocked_after = {}
        result = self._result(count, count.begin(now=e.clock.now()))
        if not result.ok:
            return result
        return await self._open_next(count, result)

    async def enter(self, command: EnterPocketCount) -> CommandResult:
        count = self.current
        if count is None:
            return CommandResult.refuse("engine.no_workflow", "no count is in progress; start one first")
        await self._refresh()
        opened = self._notice_opening(count)
        decision = count.count_entered(now=self.engine.clock.now(), pocket_id=command.pocket_id, count=command.count)
        result = self._result(count, decision, opened)
        if decision.accepted and count.state is CountState.COUNTING:
            following = await self._open_next(count, result)
            if following.ok:
                return following
            # The count was recorded; only the next pocket did not unlock (``UnlockCountPocket`` tries again).
            failed = {"code": following.code, "detail": following.detail, **following.context}
            return CommandResult(True, {**following.data, "next_unlock": failed})
        if decision.accepted:
            await self._relock_unopened(count)
        return result

    async def unlock_next(self, command: UnlockCountPocket) -> CommandResult:
        """Unlock the next pocket again: its unlock failed, or the hold ran out before anyone opened it."""
        count = self.current
        if count is None or count.state is not CountState.COUNTING:
            return CommandResult.refuse("engine.no_workflow", "no count is in progress")
        await self._refresh()
        opened = self._notice_opening(count)
        if count.next_pocket in count.opened:
            return opened or CommandResult(True, {"count": count.view(), "state": count.state.value})
        base = opened or CommandResult(True, {"count": count.view(), "state": count.state.value, "ledger_seqs": []})
        return await self._open_next(count, base)

    async def stop(self, command: StopCount) -> CommandResult:
        count = self.current
        if count is None:
            return CommandResult.refuse("engine.no_workflow", "no count is in progress")
        result = self._result(count, count.stop(now=self.engine.clock.now()))
        if result.ok:
            await self._relock_unopened(count)
        return result

    # --- the pockets -----------------------------------------------------------------------------------------------

    async def _open_next(self, count: Count, result: CommandResult) -> CommandResult:
        """Unlock the next pocket of ``count`` for the person counting; ``result`` is what the command did so far."""
        e = self.engine
        pocket = count.next_pocket
        if pocket is None:
            return result
        innermost = e.compartments[e.unlock_chain[pocket][-1]]
        if innermost.state is CompartmentState.OPEN and released_for(innermost, e.session.session_id, count.id):
            # The next pocket of a matrix drawer this count already has open: it is in front of the counter.
            decision = count.pocket_opened(now=e.clock.now(), pocket_id=pocket, opened_seq=None)
            return self._result(count, decision, result)
        self.unlocked_after[pocket] = self._head_seq()
        unlocked = await unlock_pocket(e, pocket, PURPOSE, count.id)
        data: dict[str, Any] = {**result.data, "count": count.view(), "next": pocket}
        if not unlocked.ok:
            return CommandResult(False, data, unlocked.code, unlocked.detail, unlocked.context)
        return CommandResult(True, {**data, "unlocked": unlocked.data["unlocked"]})

    def _notice_opening(self, count: Count) -> CommandResult | None:
        """If the next pocket's innermost compartment was opened for this count since it was unlocked, tell the
        machine (the opening's entry was written from the sensors, naming this count as its workflow)."""
        e = self.engine
        pocket = count.next_pocket
        since = self.unlocked_after.get(pocket) if pocket is not None else None
        if pocket is None or since is None or pocket in count.opened:
            return None
        compartment_id = e.unlock_chain[pocket][-1]
        with e.db.read() as session:
            rows = session.execute(
                select(LedgerEntryRow.seq, LedgerEntryRow.body)
                .where(
                    LedgerEntryRow.cabinet_id == e.cabinet_id,
                    LedgerEntryRow.seq > since,
                    LedgerEntryRow.event_type == EventType.DRAWER_OPENED.value,
                )
                .order_by(LedgerEntryRow.seq)
            ).all()
        for seq, body in rows:
            details = json.loads(body)["details"]
            if details.get("compartment_id") == compartment_id and details.get("workflow_id") == count.id:
                decision = count.pocket_opened(now=e.clock.now(), pocket_id=pocket, opened_seq=seq)
                return self._result(count, decision)
        return None

    async def _refresh(self) -> None:
        """Read the sensors once so the compartments (and their ledger entries) reflect what the person did."""
        e = self.engine
        try:
            e._apply_snapshot(await e._io(e.board.snapshot()))
        except ControllerError:
            return  # a board that does not answer leaves the compartments as they were; the count refuses or waits

    async def _relock_unopened(self, count: Count) -> None:
        """Lock again what was released for this count and never opened (the safe direction)."""
        e = self.engine
        await e._relock([c for c in e.compartments.by_id.values() if released_for(c, e.session.session_id, count.id)])

    def _head_seq(self) -> int:
        with self.engine.db.read() as session:
            head = session.get(LedgerHeadRow, self.engine.cabinet_id)
        return head.last_seq if head is not None else 0
