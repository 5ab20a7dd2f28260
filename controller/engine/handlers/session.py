"""The cabinet session: login, logout, an administrator clearing a lockout, and the time rules (``Tick``).

Responsible for: login and the lockout persisted with each failure (argon2 off the loop through
``CredentialCheck``; a locked-out user or a second login is refused without spending argon2 time); logout, which
ends the user's workflows (each handler says what that means for its own: a pull opened and not closed out
becomes an undocumented access); ``ClearLockout`` by an administrator with a reason; and ``Tick``: the
inactivity warning and logoff, the logoff of a user disabled or expired while logged in, left-open alarms, and
every handler's time rules (escalations, shift end).

Not responsible for: the rules of the session (``controller.fsm.session``) or of any workflow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from controller.engine.commands.session import (
    ClearLockout,
    GetSession,
    KeepAlive,
    LockoutCleared,
    Login,
    Logout,
    SessionStarted,
    SessionStep,
    SessionView,
    Tick,
    TickReport,
)
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler, Reaction
from controller.fsm.base import Decision
from controller.fsm.session import Credentials
from controller.store.cabinet_store import LockoutState
from controller.store.ledger import SealedEntry


class SessionHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._ended: set[int] = set()  # sessions whose workflows have been ended already
        ctx.registry.add(self)
        ctx.registry.command(Login, self.login, needs_session=False)
        ctx.registry.command(Logout, self.logout)
        ctx.registry.command(ClearLockout, self.clear_lockout)
        ctx.registry.command(Tick, self.tick, needs_session=False)
        ctx.registry.command(KeepAlive, self.keep_alive)
        ctx.registry.query(GetSession, self.view)

    def view(self, query: GetSession | None = None) -> CommandResult[SessionView]:
        session = self.ctx.session
        machines = session.settings
        return CommandResult.done(SessionView(session.state.value, session.session_id, session.user,
                                              machines.inactivity_warning.total_seconds(),
                                              machines.inactivity_logout.total_seconds()))  # fmt: skip

    async def keep_alive(self, command: KeepAlive) -> CommandResult[SessionView]:
        # The dispatcher has already recorded the activity of the active session; a call naming an ended one is
        # refused, so a stale page cannot keep someone else's session alive.
        if self.ctx.session.session_id != command.session_id:
            return CommandResult.refuse("auth.session_ended", "that session has ended")
        return self.view()

    async def login(self, command: Login) -> CommandResult[SessionStarted]:
        ctx = self.ctx
        session = ctx.session
        now = ctx.now()
        if session.is_active or session.lockout_of(command.user_id).is_locked(now):
            # The machine refuses without looking at the secrets: no argon2 time spent on a refusal.
            decision = session.login(now=now, credentials=Credentials(command.user_id, None))
            return self._login_result(decision, command.user_id)
        credentials = await ctx.credentials.present(command.user_id, pin=command.pin, badge=command.badge)
        return self._login_result(session.login(now=ctx.now(), credentials=credentials), command.user_id)

    def _login_result(self, decision: Decision, user_id: str) -> CommandResult[SessionStarted]:
        session = self.ctx.session
        lockout = session.lockouts.get(user_id)
        saved = None if lockout is None else LockoutState(lockout.failures, lockout.locked_at, lockout.until)
        self.ctx.recorder.commit(decision, lockout=(user_id, saved))
        if decision.refused:
            assert decision.refusal is not None
            failures = lockout.failures if lockout else 0
            limit = session.settings.max_failed_logins
            return CommandResult.refused(decision.refusal, failures=failures,
                                         attempts_left=max(0, limit - failures))  # fmt: skip
        return CommandResult.done(SessionStarted(user_id, session.session_id))

    async def logout(self, command: Logout) -> CommandResult[SessionStep]:
        session = self.ctx.session
        session_id = session.session_id
        decision = session.logout(now=self.ctx.now())
        sealed = self.ctx.recorder.commit(decision)
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal)
        sealed += await self.end_workflows(session_id, "logoff")
        return CommandResult.done(SessionStep(decision.state.value, seqs(sealed)))

    async def end_workflows(self, session_id: int, reason: str) -> list[SealedEntry]:
        """Every workflow of an ended session is told, once (logout, inactivity, an expired account)."""
        if session_id in self._ended or session_id == 0:
            return []
        self._ended.add(session_id)
        reaction = self.ctx.registry.session_ended(session_id, reason, self.ctx.now())
        return await self.ctx.settle(reaction)

    async def clear_lockout(self, command: ClearLockout) -> CommandResult[LockoutCleared]:
        ctx = self.ctx
        if not command.reason.strip():
            return CommandResult.refuse("workflow.reason_required", "say why the lockout is cleared")
        with ctx.store.read() as reader:
            known = reader.user(command.user_id) is not None
        if not known:
            return CommandResult.refuse("admin.unknown_user", f"no user {command.user_id}", user=command.user_id)
        decision = ctx.session.clear_lockout(now=ctx.now(), admin=ctx.user(), user_id=command.user_id,
                                             reason=command.reason)  # fmt: skip
        if decision.refused:
            ctx.recorder.commit(decision)
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal)
        sealed = ctx.recorder.commit(decision, lockout=(command.user_id, None))
        return CommandResult.done(LockoutCleared(command.user_id, seqs(sealed)))

    def _refresh_user(self, now: datetime) -> str | None:
        """A user disabled or expired since they logged in (by the hospital directory, an administrator) ends the
        session at the next tick, not at their next login: the session's own copy of the user is from login
        time (CVE-2019-13517 was an expired account that kept access)."""
        session = self.ctx.session
        user = session.user
        if not session.is_active or user is None:
            return None
        with self.ctx.store.read() as reader:
            stored = reader.user(user.id)
        if stored is None:
            stored = replace(user, active=False)
        if stored.is_usable_at(now) and user.is_usable_at(now):
            return None
        session.user = stored
        return "account_expired" if stored.active else "account_disabled"

    async def tick(self, command: Tick) -> CommandResult[TickReport]:
        ctx = self.ctx
        now = ctx.now()
        session = ctx.session
        session_id = session.session_id if session.is_active else 0
        unusable = self._refresh_user(now)
        reaction = Reaction([session.tick(now=now)])
        for compartment in ctx.compartments.by_id.values():
            reaction.decisions.append(compartment.tick(now=now))
        sealed = await ctx.settle(reaction)
        if session_id and not session.is_active:
            sealed += await self.end_workflows(session_id, unusable or "inactivity")
        sealed += await ctx.settle(ctx.registry.tick(now))
        return CommandResult.done(TickReport(session.state.value, len(sealed)))
