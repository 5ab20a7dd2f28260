"""Administration at the cabinet: critical-override mode, the rules in force, the override list, users; and the
cabinet's status for status pages.

Responsible for: each change checked (an administrator; a reason for a rules change; values validated as the
policy file is) and recorded as one ``configuration.changed`` entry in the transaction of the change itself, with
what it was and what it is now; a rules change reaching every machine at once (the session's timing, the
compartments' limits, the next pull's policy). The current rules are the newest ``rules`` entry in the ledger (or
the policy file, on first start: the composition root records it).

Not responsible for: parsing and validating a policy document (``controller.domain.rules_document``) or choosing
which document is in force at start (``controller.bootstrap``).
"""

from __future__ import annotations

from typing import Any

from controller.domain.rules_document import CabinetRules, apply_changes, diff_rules, rules_to_document
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Privilege, User, temporary_expiry
from controller.engine.commands.cabinet import (
    CabinetStatus,
    ChangeRules,
    ConfigurationChanged,
    CreateUser,
    GetCabinetStatus,
    GetRules,
    ListUsers,
    RulesView,
    SetCriticalOverride,
    SetOverrideList,
    SetUserActive,
    UserChanged,
    UserCreated,
    UserList,
)
from controller.engine.configuration import RULES_KIND, ledger_value, put_rules_in_force, rules_record
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.errors import ConfigurationError, SafetyError
from controller.store.cabinet_store import CabinetWriter
from controller.store.ledger import SealedEntry

CRITICAL_OVERRIDE_KIND = "cabinet.critical_override"


class AdminHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        r = ctx.registry
        r.add(self)
        r.command(SetCriticalOverride, self.set_critical_override)
        r.command(ChangeRules, self.change_rules)
        r.command(SetOverrideList, self.set_override_list)
        r.command(CreateUser, self.create_user)
        r.command(SetUserActive, self.set_user_active)
        r.query(GetRules, self.get_rules)
        r.query(GetCabinetStatus, self.status)
        r.query(ListUsers, self.users)
        with ctx.store.read() as reader:
            mode = reader.last_configuration(CRITICAL_OVERRIDE_KIND)
        ctx.modes.critical_override = bool(mode and mode.get("enabled"))  # the mode survives a restart

    def _admin(self) -> User | CommandResult[Any]:
        user = self.ctx.user()
        if not user.has(Privilege.ADMINISTER):
            return CommandResult.refuse(
                "policy.privilege_missing",
                f"user {user.id} may not change the cabinet's configuration",
                user=user.id,
                privilege=Privilege.ADMINISTER.value,
            )
        return user

    def _entry(self, user: User, kind: str, reason_code: str, note: str | None = None, **details: Any) -> LedgerRecord:
        return LedgerRecord(
            event_type=EventType.CONFIGURATION_CHANGED,
            actor_id=user.id,
            reason_code=reason_code,
            note=note,
            details={"kind": kind, "occurred_at": self.ctx.now().isoformat(), **details},
        )

    # --- modes and rules ------------------------------------------------------------------------------------------

    async def set_critical_override(self, command: SetCriticalOverride) -> CommandResult[ConfigurationChanged]:
        user = self._admin()
        if isinstance(user, CommandResult):
            return user
        record = self._entry(user, CRITICAL_OVERRIDE_KIND,
                             "critical_override_on" if command.enabled else "critical_override_off",
                             note=command.reason or None, enabled=command.enabled)  # fmt: skip
        sealed = self.ctx.recorder.commit(record)
        self.ctx.modes.critical_override = command.enabled
        return CommandResult.done(ConfigurationChanged(CRITICAL_OVERRIDE_KIND, {"enabled": command.enabled},
                                                       seqs(sealed)))  # fmt: skip

    async def change_rules(self, command: ChangeRules) -> CommandResult[ConfigurationChanged]:
        user = self._admin()
        if isinstance(user, CommandResult):
            return user
        if not command.reason.strip():
            return CommandResult.refuse("workflow.reason_required", "say why the rules change")
        rules = self.ctx.rules
        before = CabinetRules(rules.policy, rules.machines)
        try:
            after = apply_changes(before, command.changes)
        except ConfigurationError as error:
            # The same validation as the policy file's, but a request's mistake, not the server's (422, not 500).
            return CommandResult.refuse("admin.invalid_rules", error.detail, **error.context)
        changes = [{"section": s, "key": k, "from": ledger_value(old), "to": ledger_value(new)}
                   for s, k, old, new in diff_rules(before, after)]  # fmt: skip
        if not changes:
            return CommandResult.done(ConfigurationChanged(RULES_KIND, rules_to_document(after), ()))
        record = rules_record(after, actor_id=user.id, source="administrator", reason=command.reason.strip(),
                              changes=changes, occurred_at=self.ctx.now().isoformat())  # fmt: skip
        sealed = self.ctx.recorder.commit(record)
        put_rules_in_force(self.ctx, after, source="administrator")
        return CommandResult.done(ConfigurationChanged(RULES_KIND, {"hash": after.hash, "changes": changes},
                                                       seqs(sealed)))  # fmt: skip

    async def set_override_list(self, command: SetOverrideList) -> CommandResult[ConfigurationChanged]:
        with self.ctx.store.read() as reader:
            unknown = reader.missing_items(sorted(command.items))
        if unknown:
            return CommandResult.refuse("inventory.unknown_item", f"not in the formulary: {', '.join(unknown)}",
                                        items=unknown)  # fmt: skip
        return await self.change_rules(ChangeRules({"removal": {"override_items": sorted(command.items)}},
                                                   command.reason))  # fmt: skip

    def get_rules(self, query: GetRules) -> CommandResult[RulesView]:
        rules = self.ctx.rules
        current = CabinetRules(rules.policy, rules.machines)
        return CommandResult.done(RulesView(rules_to_document(current), current.hash, rules.source))

    # --- users --------------------------------------------------------------------------------------------------

    async def create_user(self, command: CreateUser) -> CommandResult[UserCreated]:
        admin = self._admin()
        if isinstance(admin, CommandResult):
            return admin
        now = self.ctx.now()
        user = User(command.user_id, command.display_name, command.roles,
                    expires_at=temporary_expiry(now, self.ctx.rules.policy.temporary_user_lifetime) if command.temporary
                    else None)  # fmt: skip
        try:
            pin_hash = self.ctx.credentials.hasher.hash_pin(command.pin)  # refuses a weak PIN before anything
        except SafetyError as error:
            return CommandResult.from_error(error)
        created: list[bool] = []
        record = self._entry(admin, "user.created", "user_created", user_id=user.id,
                             roles=sorted(r.value for r in command.roles), temporary=command.temporary)  # fmt: skip

        def save(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            created.append(tx.create_user(user, pin_hash=pin_hash))
            if not created[0]:
                raise _UserExistsError

        try:
            sealed = self.ctx.recorder.commit(record, then=save)
        except _UserExistsError:
            return CommandResult.refuse("admin.user_exists", f"user {user.id} already exists", user=user.id)
        return CommandResult.done(UserCreated(user.id, user.expires_at, sealed[0].seq))

    async def set_user_active(self, command: SetUserActive) -> CommandResult[UserChanged]:
        admin = self._admin()
        if isinstance(admin, CommandResult):
            return admin
        if command.user_id == admin.id and not command.active:
            return CommandResult.refuse("policy.privilege_missing", "an administrator cannot deactivate their own "
                                        "account")  # fmt: skip
        with self.ctx.store.read() as reader:
            target = reader.user(command.user_id)
        if target is None:
            return CommandResult.refuse("admin.unknown_user", f"no user {command.user_id}", user=command.user_id)
        if target.active == command.active:
            return CommandResult.done(UserChanged(command.user_id, command.active, None))
        kind = "user.activated" if command.active else "user.deactivated"
        record = self._entry(admin, kind, kind.replace(".", "_"), user_id=command.user_id)

        def change(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            tx.set_user_active(command.user_id, command.active)

        sealed = self.ctx.recorder.commit(record, then=change)
        return CommandResult.done(UserChanged(command.user_id, command.active, sealed[0].seq))

    def users(self, query: ListUsers) -> CommandResult[UserList]:
        ctx = self.ctx
        now = ctx.now()
        with ctx.store.read() as reader:
            found = reader.users()
        return CommandResult.done(UserList(tuple(
            {"user_id": u.id, "display_name": u.display_name, "roles": sorted(r.value for r in u.roles),
             "active": u.active, "expires_at": u.expires_at.isoformat() if u.expires_at else None,
             "usable": u.is_usable_at(now), "locked_out": ctx.session.lockout_of(u.id).is_locked(now),
             "failed_logins": ctx.session.lockout_of(u.id).failures}
            for u in found
        )))  # fmt: skip

    # --- status -------------------------------------------------------------------------------------------------

    def status(self, query: GetCabinetStatus) -> CommandResult[CabinetStatus]:
        ctx = self.ctx
        return CommandResult.done(CabinetStatus(
            compartments={c.id: c.state.value for c in ctx.compartments.by_id.values()},
            unaccounted=tuple(ctx.compartments.unaccounted()),
            critical_override_mode=ctx.modes.critical_override,
            board_protocol=ctx.modes.board_protocol,
            live_workflows=tuple(ctx.registry.live_views()),
            unlock_chains=dict(ctx.topology.unlock_chain),
        ))  # fmt: skip


class _UserExistsError(Exception):
    """Rolls the user's transaction back (its entry with it) when the id is taken."""
