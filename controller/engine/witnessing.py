"""The witness step at the cabinet: a second person signs for one action of the logged-in user.

Responsible for: opening the one witness step of a session for an action a workflow says is waiting for a witness
(its ``WitnessTarget``), checking the witness's PIN or badge (``CredentialCheck``, as login does), a failed witness
sign-in being a ledger entry that counts toward the witness's own lockout (persisted), handing the
``WitnessSignature`` to the workflow, and never losing the action: a cancelled step, or one abandoned because the
session ended, is reported to its workflow, which keeps the action (a waste goes to the pending list).

Not responsible for: who may witness what (``Session.witness_sign`` and ``policies.check_witness``), or the
workflows themselves; the ``BeginWitness`` / ``SignWitness`` / ``CancelWitness`` commands are the witness handler's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from controller.domain.clock import Clock
from controller.engine.commands.clinical import WitnessBegun, WitnessCancelled, WitnessFor, WitnessSigned
from controller.engine.credentials import CredentialCheck
from controller.engine.recording import Recorder
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Reaction
from controller.fsm.base import WitnessSignature
from controller.fsm.session import Credentials, Session, SessionState
from controller.store.cabinet_store import LockoutState


class WitnessTarget(Protocol):
    """A workflow that can wait for a witness."""

    def witness_action(self, target_id: str) -> str | CommandResult[Any]:
        """The witnessed action of ``target_id`` waiting for a witness, or why there is none."""
        ...

    async def witness_signed(self, target_id: str, signature: WitnessSignature) -> CommandResult[Any]: ...

    def witness_cancelled(self, target_id: str, *, abandoned: bool) -> Reaction: ...


@dataclass(frozen=True, slots=True)
class WitnessStep:
    kind: WitnessFor
    target_id: str
    action: str
    session_id: int

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "target_id": self.target_id, "action": self.action}


class WitnessDesk:
    def __init__(
        self, session: Callable[[], Session], clock: Clock, credentials: CredentialCheck, recorder: Recorder
    ) -> None:
        self._session = session
        self.clock = clock
        self.credentials = credentials
        self.recorder = recorder
        self.targets: dict[WitnessFor, WitnessTarget] = {}
        self.step: WitnessStep | None = None

    def add_target(self, kind: WitnessFor, target: WitnessTarget) -> None:
        if kind in self.targets:
            raise ValueError(f"{kind} already has a witness target")
        self.targets[kind] = target

    def step_for(self, kind: WitnessFor, target_id: str) -> WitnessStep | None:
        step = self.step
        return step if step is not None and step.kind is kind and step.target_id == target_id else None

    # --- the step -----------------------------------------------------------------------------------------------

    def begin(self, kind: WitnessFor, target_id: str) -> CommandResult[WitnessBegun]:
        target = self.targets.get(kind)
        if target is None:
            return CommandResult.refuse("engine.no_workflow", f"nothing of kind {kind} waits for a witness")
        action = target.witness_action(target_id)
        if isinstance(action, CommandResult):
            return action
        session = self._session()
        decision = session.witness_begin(now=self.clock.now(), action=action)
        self.recorder.commit(decision)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal)
        self.step = WitnessStep(kind, target_id, action, session.session_id)
        return CommandResult.done(WitnessBegun(decision.state.value, self.step.view()))

    async def sign(self, user_id: str, *, pin: str | None, badge: str | None) -> CommandResult[WitnessSigned]:
        step = self.step
        session = self._session()
        if step is None or session.state is not SessionState.WITNESSING:
            return CommandResult.refuse("engine.no_witness_step", "no witness step is open; begin one first")
        if session.lockout_of(user_id).is_locked(self.clock.now()):
            # Refused without looking at the secrets: no argon2 time spent on a locked-out witness.
            locked = session.witness_sign(now=self.clock.now(), credentials=Credentials(user_id, None))
            self.recorder.commit(locked)
            assert locked.refusal is not None
            return CommandResult.refused(locked.refusal, witness_step=step.view())
        credentials = await self.credentials.present(user_id, pin=pin, badge=badge)
        decision = session.witness_sign(now=self.clock.now(), credentials=credentials)
        lockout = session.lockouts.get(user_id)
        saved = None if lockout is None else LockoutState(lockout.failures, lockout.locked_at, lockout.until)
        if decision.refused or decision.signature is None:
            sealed = self.recorder.commit(decision, lockout=(user_id, saved))
            assert decision.refusal is not None
            return CommandResult.refused(
                decision.refusal,
                state=decision.state.value,
                ledger_seqs=list(seqs(sealed)),
                failures=lockout.failures if lockout else 0,
                witness_step=step.view(),
            )
        self.recorder.commit(decision, lockout=(user_id, None))
        self.step = None
        result = await self.targets[step.kind].witness_signed(step.target_id, decision.signature)
        if result.payload is None:
            return result
        return result.with_payload(WitnessSigned(decision.signature.witness_id, result.payload))

    def cancel(self) -> tuple[CommandResult[WitnessCancelled], Reaction]:
        step = self.step
        if step is None:
            return CommandResult.refuse("engine.no_witness_step", "no witness step is open"), Reaction()
        decision = self._session().witness_cancel(now=self.clock.now())
        if decision.refused:
            self.recorder.commit(decision)
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal), Reaction()
        self.step = None
        reaction = self.targets[step.kind].witness_cancelled(step.target_id, abandoned=False)
        reaction.decisions.insert(0, decision)
        return CommandResult.done(WitnessCancelled(decision.state.value, step.view())), reaction

    def abandon(self, session_id: int, now: datetime) -> Reaction:
        """The session of the open step ended (logoff, inactivity, another login): its workflow keeps the action."""
        step = self.step
        if step is None or step.session_id != session_id:
            return Reaction()
        self.step = None
        return self.targets[step.kind].witness_cancelled(step.target_id, abandoned=True)
