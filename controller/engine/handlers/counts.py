"""Cycle counts and shift-change counts of pockets, blind, end to end: each pocket unlocked in turn.

Responsible for: listing the pockets (every controlled pocket of the cabinet unless the command names them, in
drawer and pocket order), with what the store says each holds (never shown: ``Count.view`` is blind); unlocking
them one after the other through the actuator with a grant naming the count (journaled first), the next one as
soon as the previous one is counted; telling the ``Count`` machine that a pocket was opened when the sensors show
its compartment opened for this count (or at once when the next pocket sits in a matrix drawer already open for
this count); feeding each entered count to the machine, which refuses a pocket that was never opened; recording
each outcome (``count.entered`` per pocket; a mismatch is a ``discrepancy.raised`` with its row); locking again,
when the count ends, whatever was released for it; and its end with its session or a restart (a pocket opened
for it and not counted is an undocumented access).

Not responsible for: the rules (the ``Count`` machine), resolving discrepancies, or the sensor poll loop (each
count command reads one fresh snapshot first, through ``refresh``, so it sees what the person did).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from controller.engine.commands.pharmacy import (
    CountStep,
    EnterPocketCount,
    StartCount,
    StopCount,
    UnlockCountPocket,
)
from controller.engine.context import EngineContext
from controller.engine.recording import JournalEnd, JournalWrite
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import CompartmentEvent, CompartmentEventKind, Evidence, Handler, JournalKind, Reaction
from controller.fsm.base import Decision
from controller.fsm.compartment import CompartmentState
from controller.fsm.workflows.count import Count, CountKind, CountLine, Counts, CountState
from controller.store.cabinet_store import JournalEntry
from controller.store.ledger import SealedEntry

KIND = JournalKind.COUNT.value
OPENED = (CompartmentEventKind.OPENED, CompartmentEventKind.OPENED_AND_CLOSED)


class CountHandler(Handler):
    journal_kinds = frozenset({KIND})

    def __init__(self, ctx: EngineContext, refresh: Callable[[], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.refresh = refresh  # read the sensors once, so the compartments reflect what the person did
        self.counts = Counts()
        self.session_of: dict[str, int] = {}
        r = ctx.registry
        r.add(self)
        r.command(StartCount, self.start)
        r.command(EnterPocketCount, self.enter)
        r.command(UnlockCountPocket, self.unlock_next)
        r.command(StopCount, self.stop)

    def owns(self, workflow_id: str) -> bool:
        return workflow_id in self.counts.by_id

    def live_views(self) -> list[dict[str, object]]:
        return [{"kind": KIND, **c.view()} for c in self.counts.by_id.values() if c.state is CountState.COUNTING]

    # --- commands -----------------------------------------------------------------------------------------------

    async def start(self, command: StartCount) -> CommandResult[CountStep]:
        ctx = self.ctx
        busy = [c for c in self.counts.by_id.values() if c.state is CountState.COUNTING
                and self.session_of.get(c.id) == ctx.session.session_id]  # fmt: skip
        if busy:
            return CommandResult.refuse("fsm.event_not_allowed", f"count {busy[0].id} is still open")
        lines: list[CountLine] = []
        with ctx.store.read() as reader:
            for slot in ctx.topology.slots.values():
                if slot.item_id is None or (
                    command.pocket_ids is not None and slot.pocket_id not in command.pocket_ids
                ):
                    continue
                medication = reader.medication(slot.item_id)
                if medication is None or (command.pocket_ids is None and not medication.is_controlled):
                    continue
                lines.append(CountLine(slot.pocket_id, slot.item_id, reader.on_hand(slot.pocket_id),
                                       controlled=medication.is_controlled,
                                       schedule_ii=medication.dea_schedule.is_schedule_ii))  # fmt: skip
        if not lines:
            return CommandResult.refuse("engine.item_not_stocked", "no pockets to count")
        count = self.counts.start(f"CNT-{uuid.uuid4().hex[:12]}", actor=ctx.user(), kind=CountKind(command.kind),
                                  lines=tuple(lines))  # fmt: skip
        self.session_of[count.id] = ctx.session.session_id
        begun = count.begin(now=ctx.now())
        sealed = ctx.recorder.commit(begun, journal=[self._journal(count)])
        if begun.refused:
            return self._result(count, begun, sealed)
        return await self._open_next(count, begun, sealed)

    def _mine(self, count_id: str) -> Count | CommandResult[Any]:
        count = self.counts.by_id.get(count_id)
        user = self.ctx.session.user
        if count is None or count.state is not CountState.COUNTING:
            return CommandResult.refuse("engine.no_workflow", f"no count {count_id} in progress", count=count_id)
        if user is None or count.actor.id != user.id:
            return CommandResult.refuse("workflow.not_owner", f"count {count_id} is {count.actor.id}'s")
        return count

    async def enter(self, command: EnterPocketCount) -> CommandResult[CountStep]:
        count = self._mine(command.count_id)
        if isinstance(count, CommandResult):
            return count
        await self.refresh()
        opened_seq = count.opened.get(command.pocket_id)
        if opened_seq is None and command.pocket_id in self.ctx.topology.unlock_chain:
            with self.ctx.store.read() as reader:
                opened_seq = reader.opening_seq(self.ctx.topology.innermost(command.pocket_id), count.id)
        decision = count.count_entered(now=self.ctx.now(), pocket_id=command.pocket_id, count=command.count,
                                       opened_seq=opened_seq)  # fmt: skip
        sealed = self.ctx.recorder.commit(decision, journal=[self._journal(count)])
        if decision.accepted and count.state is CountState.COUNTING:
            following = await self._open_next(count, decision, sealed)
            if following.ok:
                return following
            # The count was recorded; only the next pocket did not unlock (``UnlockCountPocket`` tries again).
            failed = {"code": following.code, "detail": following.detail, **following.context}
            base = following.payload or CountStep(count.view(), count.state.value, seqs(sealed))
            assert isinstance(base, CountStep)
            return CommandResult.done(CountStep(base.count, base.state, base.ledger_seqs, base.next, (), failed))
        if count.state is not CountState.COUNTING:
            sealed += await self.ctx.actuator.release(count.id)
        return self._result(count, decision, sealed)

    async def unlock_next(self, command: UnlockCountPocket) -> CommandResult[CountStep]:
        """Unlock the next pocket again: its unlock failed, or the hold ran out before anyone opened it."""
        count = self._mine(command.count_id)
        if isinstance(count, CommandResult):
            return count
        await self.refresh()
        if count.next_pocket in count.opened:
            return CommandResult.done(CountStep(count.view(), count.state.value))
        return await self._open_next(count, None, [])

    async def stop(self, command: StopCount) -> CommandResult[CountStep]:
        count = self._mine(command.count_id)
        if isinstance(count, CommandResult):
            return count
        decision = count.stop(now=self.ctx.now())
        sealed = self.ctx.recorder.commit(decision, journal=[self._journal(count)])
        if decision.accepted:
            sealed += await self.ctx.actuator.release(count.id)
        return self._result(count, decision, sealed)

    # --- the pockets --------------------------------------------------------------------------------------------

    async def _open_next(
        self, count: Count, decision: Decision | None, sealed: list[SealedEntry]
    ) -> CommandResult[CountStep]:
        """Unlock the next pocket of ``count`` for the person counting."""
        ctx = self.ctx
        pocket = count.next_pocket
        if pocket is None:
            return CommandResult.done(CountStep(count.view(), count.state.value, seqs(sealed)))
        innermost = ctx.compartments[ctx.topology.innermost(pocket)]
        if innermost.state is CompartmentState.OPEN and innermost.holds_grant(count.id):
            # The next pocket of a matrix drawer this count already has open: it is in front of the counter.
            opened = count.pocket_opened(now=ctx.now(), pocket_id=pocket, opened_seq=None)
            sealed += ctx.recorder.commit(opened, journal=[self._journal(count)])
            return CommandResult.done(CountStep(count.view(), count.state.value, seqs(sealed), pocket))
        # Release what this count holds beyond the next pocket's chain before unlocking it (the safe direction).
        chain = ctx.topology.unlock_chain[pocket]
        others = [c.id for c in ctx.compartments.by_id.values() if c.holds_grant(count.id) and c.id not in chain]
        if others:
            sealed += await ctx.actuator.release(count.id, only=others)
        unlocked = await ctx.actuator.unlock(pocket, workflow_id=count.id, purpose=KIND,
                                             journal=[self._journal(count, unlocking=pocket)])  # fmt: skip
        sealed += unlocked.sealed
        payload = CountStep(count.view(), count.state.value, seqs(sealed), pocket, unlocked.compartments)
        if unlocked.error is not None:
            return CommandResult.from_error(unlocked.error, payload)
        if unlocked.refusal is not None:
            return CommandResult.refused(unlocked.refusal, payload)
        return CommandResult.done(payload)

    # --- sensors, session, restart ------------------------------------------------------------------------------

    def on_compartment(self, workflow_id: str, event: CompartmentEvent, now: datetime) -> Reaction:
        count = self.counts.by_id[workflow_id]
        pocket = count.next_pocket
        if (count.state is not CountState.COUNTING or pocket is None or event.kind not in OPENED
                or event.compartment_id != self.ctx.topology.innermost(pocket)):  # fmt: skip
            return Reaction()
        return Reaction([count.pocket_opened(now=now, pocket_id=pocket, opened_seq=None)], [self._journal(count)])

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        reaction = Reaction()
        for count in list(self.counts.by_id.values()):
            if self.session_of.get(count.id) == session_id and count.state in (CountState.STARTED, CountState.COUNTING):
                decision = count.abandon(now=now, reason=reason)
                reaction.merge(Reaction([decision], [self._journal(count)], [count.id]))
        return reaction

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        """The pockets it opened and did not count, and the one it had unlocked when the board cannot say it
        stayed shut, are undocumented accesses."""
        d = entry.details
        with self.ctx.store.read() as reader:
            actor = reader.user(entry.actor_id)
        if actor is None:
            return Reaction(journal=[JournalEnd(entry.workflow_id, "recovered")])
        lines = tuple(CountLine(p["pocket_id"], p["item_id"], int(p["expected"])) for p in d.get("lines", []))
        count = self.counts.start(entry.workflow_id, actor=actor, kind=CountKind(d["kind"]), lines=lines)
        count.counted.update({p: int(n) for p, n in d.get("counted", {}).items()})
        count.opened.update({p: None for p in d.get("opened", [])})
        unlocking = d.get("unlocking")
        accessed: tuple[str, ...] = ()
        if unlocking and evidence.may_have_opened(self.ctx.topology.unlock_chain.get(unlocking, ())):
            accessed = (unlocking,)
        decisions = [count.begin(now=now), count.abandon(now=now, reason="controller_restarted", accessed=accessed)]
        return Reaction(decisions, [JournalEnd(entry.workflow_id, "recovered")])

    # --- helpers ------------------------------------------------------------------------------------------------

    def _journal(self, count: Count, *, unlocking: str | None = None) -> JournalWrite:
        if count.state not in (CountState.STARTED, CountState.COUNTING):
            return JournalEnd(count.id, count.state.value)
        held = tuple(c.id for c in self.ctx.compartments.by_id.values() if c.holds_grant(count.id))
        chain = self.ctx.topology.unlock_chain.get(unlocking, ()) if unlocking else ()
        return JournalEntry(
            workflow_id=count.id,
            kind=KIND,
            actor_id=count.actor.id,
            session_id=self.session_of.get(count.id, 0),
            state=count.state.value,
            started_at=self.ctx.now(),
            pocket_id=count.next_pocket,
            compartments=tuple(dict.fromkeys((*held, *chain))),
            details={
                "kind": count.kind.value,
                "lines": [{"pocket_id": p, "item_id": line.item_id, "expected": line.expected}
                          for p, line in count.lines.items()],
                "counted": dict(count.counted),
                "opened": sorted(count.opened),
                "unlocking": unlocking or (count.next_pocket if held else None),
            },
        )  # fmt: skip

    def _result(self, count: Count, decision: Decision, sealed: list[SealedEntry]) -> CommandResult[CountStep]:
        payload = CountStep(count.view(), count.state.value, seqs(sealed))
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)
