"""The witness step at the cabinet: a second person signs for one action of the logged-in user.

Responsible for: ``BeginWitness`` / ``SignWitness`` / ``CancelWitness``; checking the witness's PIN or badge with
argon2 off the event loop (as login does), a failed witness sign-in being a ledger entry that counts toward the
witness's own lockout (persisted); handing the ``WitnessSignature`` to the workflow that waits for it (a pull in
AWAITING_WITNESS, a waste, a controlled return, a discrepancy resolution); and never losing the action: a cancelled
step, or one abandoned because the session ended (logoff, inactivity), is reported to its workflow, which keeps
it (a waste goes to the pending list). An abandoned step is noticed on the next ``Tick`` or clinical command.

Also the one recording helper the clinical modules share (``record``): outcomes and the state-table changes that
go with them, in one transaction.

Not responsible for: who may witness what (``Session.witness_sign`` and ``policies.check_witness``), or the
workflows themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session as DbSession

from controller.engine.commands import CommandResult
from controller.engine.commands_clinical import BeginWitness, CancelWitness, SignWitness, WitnessFor
from controller.fsm.base import Outcome, OutcomeKind, WitnessSignature
from controller.fsm.session import Credentials, SessionState
from controller.fsm.workflows.pull import REMOVAL_WITNESS, PullState
from controller.store import engine_state as state
from controller.store.inventory import StockChange
from controller.store.ledger import SealedEntry

if TYPE_CHECKING:
    from controller.engine.cabinet import CabinetEngine
    from controller.engine.discrepancies import DiscrepancyDesk
    from controller.engine.returns import ReturnDesk
    from controller.engine.waste import WasteDesk

Apply = Callable[[DbSession, list[SealedEntry]], None]


@dataclass(frozen=True, slots=True)
class Deposit:
    """Where the units of a ``DOSE_RETURNED`` outcome go, lot by lot: (lot number, units, expiry)."""

    parts: tuple[tuple[str, int, Any], ...]


def record(
    engine: CabinetEngine,
    outcomes: Sequence[Outcome],
    apply: Apply | None = None,
    *,
    deposit: Deposit | None = None,
    lockout: tuple[str, state.LockoutState | None] | None = None,
) -> list[SealedEntry]:
    """Write ``outcomes`` (one ledger entry each; a removal or return split by lot) and ``apply`` the state-table
    changes that go with them, in one transaction. A ``DOSE_RETURNED`` outcome moves stock through
    ``InventoryStore.apply`` into its pocket, lot by lot as ``deposit`` says."""
    if not outcomes and apply is None and lockout is None:
        return []
    sealed: list[SealedEntry] = []
    with engine.db.write() as session:
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.DOSE_RETURNED:
                sealed.extend(_returned(engine, session, outcome, deposit))
            else:
                sealed.extend(engine._record(session, outcome))
        if apply is not None:
            apply(session, sealed)
        if lockout is not None:
            state.save_lockout(session, *lockout)
    return sealed


def _returned(
    engine: CabinetEngine, session: DbSession, outcome: Outcome, deposit: Deposit | None
) -> list[SealedEntry]:
    assert outcome.pocket_id is not None and deposit is not None
    base = outcome.to_record()
    entries = []
    for index, (lot_number, units, expiry) in enumerate(deposit.parts, start=1):
        part = replace(
            base,
            lot_number=lot_number,
            quantity_actual=units,
            quantity_change=units,
            details={**base.details, "lot_part": index, "lot_parts": len(deposit.parts)},
        )
        change = StockChange(outcome.pocket_id, lot_number, units, expiry)
        entries.append(engine.inventory.apply(session, change, part))
    return entries


class WitnessTarget(Protocol):
    """A workflow that can wait for a witness."""

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        """(target id, witnessed action) of the action waiting for a witness, or why there is none."""
        ...

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult: ...

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]: ...


@dataclass(frozen=True, slots=True)
class WitnessStep:
    kind: WitnessFor
    target_id: str
    action: str
    session_id: int

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "target_id": self.target_id, "action": self.action}


class WitnessDesk:
    """The one witness step of a cabinet at a time, and the workflows that may wait for one."""

    def __init__(self, engine: CabinetEngine) -> None:
        self.engine = engine
        self.targets: dict[WitnessFor, WitnessTarget] = {WitnessFor.PULL: _PullTarget(engine)}
        self.step: WitnessStep | None = None
        engine.register(BeginWitness, self._begin_command)
        engine.register(SignWitness, self.sign)
        engine.register(CancelWitness, self.cancel)

    def add_target(self, kind: WitnessFor, target: WitnessTarget) -> None:
        self.targets[kind] = target

    # --- the step ---------------------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """A step whose session ended (logoff, inactivity, another login) is abandoned: its workflow keeps the
        action. Returns the number of entries written."""
        step = self.step
        session = self.engine.session
        if step is None:
            return 0
        if session.state is SessionState.WITNESSING and session.session_id == step.session_id:
            return 0
        self.step = None
        return len(self.targets[step.kind].witness_cancelled(step.target_id, abandoned=True))

    async def _begin_command(self, command: BeginWitness) -> CommandResult:
        self.reconcile()
        return self.begin(WitnessFor(command.kind), command.target_id)

    def begin(self, kind: WitnessFor, target_id: str | None) -> CommandResult:
        target = self.targets.get(kind)
        if target is None:
            return CommandResult.refuse("engine.no_workflow", f"nothing of kind {kind} waits for a witness")
        found = target.witness_action(target_id)
        if isinstance(found, CommandResult):
            return found
        resolved_id, action = found
        decision = self.engine.session.witness_begin(now=self.engine.clock.now(), action=action)
        if decision.refused:
            return self.engine._result(decision, [], None)
        self.step = WitnessStep(kind, resolved_id, action, self.engine.session.session_id)
        return CommandResult.success(state=decision.state.value, witness_step=self.step.view())

    async def sign(self, command: SignWitness) -> CommandResult:
        self.reconcile()
        step = self.step
        engine = self.engine
        if step is None:
            return CommandResult.refuse("engine.no_witness_step", "no witness step is open; begin one first")
        now = engine.clock.now()
        if engine.session.lockout_of(command.user_id).is_locked(now):
            # Refused without looking at the secrets: no argon2 time spent on a locked-out witness.
            decision = engine.session.witness_sign(now=now, credentials=Credentials(command.user_id, None))
            return engine._result(decision, [], None)
        credentials = await engine.present_credentials(command.user_id, pin=command.pin, badge=command.badge)
        decision = engine.session.witness_sign(now=engine.clock.now(), credentials=credentials)
        lockout = engine.session.lockouts.get(command.user_id)
        saved = None if lockout is None else state.LockoutState(lockout.failures, lockout.locked_at, lockout.until)
        if decision.refused or decision.signature is None:
            sealed = record(engine, decision.outcomes, lockout=(command.user_id, saved))
            assert decision.refusal is not None
            return CommandResult.refused(
                decision.refusal,
                state=decision.state.value,
                ledger_seqs=[e.seq for e in sealed],
                failures=lockout.failures if lockout else 0,
                witness_step=step.view(),
            )
        record(engine, decision.outcomes, lockout=(command.user_id, None))
        self.step = None
        result = await self.targets[step.kind].witness_signed(step.target_id, decision.signature)
        return CommandResult(
            result.ok,
            {**result.data, "witness_id": decision.signature.witness_id},
            result.code,
            result.detail,
            result.context,
        )

    async def cancel(self, command: CancelWitness) -> CommandResult:
        self.reconcile()
        step = self.step
        if step is None:
            return CommandResult.refuse("engine.no_witness_step", "no witness step is open")
        decision = self.engine.session.witness_cancel(now=self.engine.clock.now())
        if decision.refused:
            return self.engine._result(decision, [], None)
        self.step = None
        sealed = self.targets[step.kind].witness_cancelled(step.target_id, abandoned=False)
        return CommandResult.success(
            state=decision.state.value, cancelled=step.view(), ledger_seqs=[e.seq for e in sealed]
        )


class _PullTarget:
    """A pull waiting in AWAITING_WITNESS (``FsmSettings.removal_witness_schedules``): once signed, the engine
    unlocks as after any other step. A cancelled step leaves the pull waiting (the user may cancel the pull)."""

    def __init__(self, engine: CabinetEngine) -> None:
        self.engine = engine

    def witness_action(self, target_id: str | None) -> tuple[str, str] | CommandResult:
        pull = self.engine.pull
        if pull is None or pull.state is not PullState.AWAITING_WITNESS or target_id not in (None, pull.id):
            return CommandResult.refuse("engine.no_workflow", "no pull is waiting for a witness")
        return pull.id, REMOVAL_WITNESS

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult:
        pull = self.engine.pull
        if pull is None or pull.id != target_id:
            return CommandResult.refuse("engine.no_workflow", "the pull that waited for this witness has ended")
        decision = pull.witness_signed(now=self.engine.clock.now(), signature=signature)
        return await self.engine._after_step(pull, decision)

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> list[SealedEntry]:
        return []


class ClinicalWorkflows:
    """The clinical workflows of one cabinet, hung off its witness desk: what ``CabinetEngine`` builds at the end
    of its construction (they register their commands), asks on every ``Tick`` (escalations) and asks when a pull
    chooses a pocket (an open controlled-substance discrepancy)."""

    def __init__(self, engine: CabinetEngine) -> None:
        from controller.engine.discrepancies import DiscrepancyDesk
        from controller.engine.override_reviews import OverrideReviewDesk
        from controller.engine.returns import ReturnDesk
        from controller.engine.waste import WasteDesk

        self.witness = WitnessDesk(engine)
        self.waste: WasteDesk = WasteDesk(engine, self.witness)
        self.returns: ReturnDesk = ReturnDesk(engine, self.witness)
        self.discrepancies: DiscrepancyDesk = DiscrepancyDesk(engine, self.witness)
        self.override_reviews: OverrideReviewDesk = OverrideReviewDesk(engine)

    def tick(self, now: datetime) -> int:
        """Abandoned witness steps, overdue wastes, discrepancies past their deadline; entries written."""
        return self.waste.tick(now) + self.discrepancies.tick(now)

    def discrepancy_blocks(self, user_id: str, pocket_id: str) -> bool:
        """The pull's ``open_cs_discrepancy``: ``discrepancy_blocks`` over the open discrepancy rows."""
        return self.discrepancies.blocks(user_id, pocket_id)
