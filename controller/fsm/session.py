"""The cabinet session: who is at the keyboard, with which factors, for how long, and who witnesses for them.

Responsible for: login by PIN and/or badge (and a simulated biometric) with the factors recorded; refusing a
second user while one is active (one active user per cabinet); refusing expired temporary and deactivated users;
counting failed attempts per user and locking a user out (for ``lockout_duration`` or until an administrator
clears it); the inactivity warning and logoff on the ``now`` values the engine passes to ``tick``; and the witness
sign-off: a second person authenticates for one action, is checked against ``policies.check_witness``, and the
``WitnessSignature`` comes back on the decision.

Not responsible for: verifying a PIN hash or reading a badge (the engine does that and passes a ``Credentials``
value saying which factors verified), reading the clock, persisting lockouts (``lockouts`` is plain data the
engine may save and pass back in), or the state of the witnessed action itself: each workflow owns its own
"awaiting witness" / "pending witness" states, so cancelling here or timing out never loses the action.

Events (all take ``now``): ``login(credentials)``, ``logout``, ``activity``, ``tick``,
``witness_begin(action)``, ``witness_sign(credentials, medication_controlled)``, ``witness_cancel``,
``clear_lockout(admin, user_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.policies import WitnessedAction, check_witness
from controller.domain.users import Privilege, User
from controller.errors import SafetyError
from controller.fsm.base import (
    Decision,
    MachinePool,
    MachineSpec,
    OutcomeKind,
    WitnessSignature,
    Workflow,
    arg,
    now_of,
)
from controller.fsm.settings import FsmSettings


class SessionState(Enum):
    LOGGED_OUT = "logged_out"
    AUTHENTICATED = "authenticated"
    WARNED = "warned"  # inactivity warning shown; any activity returns to authenticated
    WITNESSING = "witnessing"  # a second person is signing for one action of the active user


class Factor(StrEnum):
    PIN = "pin"
    BADGE = "badge"
    BIOMETRIC = "biometric"  # simulated; PIN and badge always remain as a fallback


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the engine found when it checked what someone presented. ``user`` is None for an unknown id."""

    user_id: str
    user: User | None
    verified: frozenset[Factor] = field(default=frozenset())
    failed: frozenset[Factor] = field(default=frozenset())


@dataclass(frozen=True, slots=True)
class Lockout:
    """Failed attempts of one user since their last success, and since when they are locked out, if they are."""

    failures: int = 0
    locked_at: datetime | None = None
    until: datetime | None = None  # None while locked: an administrator must clear it

    def is_locked(self, now: datetime) -> bool:
        return self.locked_at is not None and (self.until is None or now < self.until)


_POLICY_ACTIONS = frozenset(a.value for a in WitnessedAction)

S = SessionState
ACTIVE = [S.AUTHENTICATED, S.WARNED, S.WITNESSING]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {
        "trigger": "login",
        "source": S.LOGGED_OUT,
        "dest": S.AUTHENTICATED,
        "conditions": ["guard_not_locked_out", "guard_credentials", "guard_usable"],
        "after": "on_login",
    },
    {"trigger": "logout", "source": ACTIVE, "dest": S.LOGGED_OUT, "after": "on_logout"},
    {"trigger": "activity", "source": S.AUTHENTICATED, "dest": None, "after": "on_activity"},
    {"trigger": "activity", "source": S.WARNED, "dest": S.AUTHENTICATED, "after": "on_activity"},
    {"trigger": "activity", "source": S.WITNESSING, "dest": None, "after": "on_activity"},
    # tick: the first matching row wins, and the last row of each source always matches (nothing to do).
    {"trigger": "tick", "source": ACTIVE, "dest": S.LOGGED_OUT, "conditions": "is_expired", "after": "on_expired"},
    {"trigger": "tick", "source": ACTIVE, "dest": S.LOGGED_OUT, "conditions": "is_idle_out", "after": "on_idle_out"},
    {"trigger": "tick", "source": S.AUTHENTICATED, "dest": S.WARNED, "conditions": "is_idle_warn"},
    {"trigger": "tick", "source": [S.LOGGED_OUT, *ACTIVE], "dest": None},
    {
        "trigger": "witness_begin",
        "source": [S.AUTHENTICATED, S.WARNED],
        "dest": S.WITNESSING,
        "after": "on_witness_begin",
    },
    {
        "trigger": "witness_sign",
        "source": S.WITNESSING,
        "dest": S.AUTHENTICATED,
        "conditions": ["guard_witness"],
        "after": "on_witness_signed",
    },
    {"trigger": "witness_cancel", "source": S.WITNESSING, "dest": S.AUTHENTICATED, "after": "on_witness_end"},
    {
        "trigger": "clear_lockout",
        "source": [S.LOGGED_OUT, *ACTIVE],
        "dest": None,
        "conditions": "guard_admin",
        "after": "on_lockout_cleared",
    },
)

SPEC = MachineSpec(
    name="session",
    states=SessionState,
    initial=S.LOGGED_OUT,
    transitions=TRANSITIONS,
    refusals={
        (S.AUTHENTICATED, "login"): "session.cabinet_in_use",
        (S.WARNED, "login"): "session.cabinet_in_use",
        (S.WITNESSING, "login"): "session.cabinet_in_use",
        (S.LOGGED_OUT, "logout"): "session.not_active",
        (S.LOGGED_OUT, "activity"): "session.not_active",
        (S.LOGGED_OUT, "witness_begin"): "session.not_active",
    },
)


class Session(Workflow):
    """The one session of one cabinet. ``lockouts`` maps user id to ``Lockout`` and may be passed in restored."""

    spec = SPEC

    def __init__(
        self,
        cabinet_id: str,
        *,
        settings: FsmSettings | None = None,
        lockouts: dict[str, Lockout] | None = None,
    ) -> None:
        super().__init__()
        self.cabinet_id = cabinet_id
        self.settings = settings or FsmSettings()
        self.lockouts: dict[str, Lockout] = dict(lockouts or {})
        self.user: User | None = None
        self.factors: frozenset[Factor] = frozenset()
        self.session_id = 0  # increases with every login; grants and signatures name the session they belong to
        self.logged_in_at: datetime | None = None
        self.last_activity: datetime | None = None
        self.witness_action: str | None = None  # a WitnessedAction value or a workflow's own action name

    # --- typed entry points -------------------------------------------------------------------------------------

    def login(self, *, now: datetime, credentials: Credentials) -> Decision:
        return self.fire("login", now=now, credentials=credentials)

    def logout(self, *, now: datetime) -> Decision:
        return self.fire("logout", now=now)

    def activity(self, *, now: datetime) -> Decision:
        return self.fire("activity", now=now)

    def tick(self, *, now: datetime) -> Decision:
        return self.fire("tick", now=now)

    def witness_begin(self, *, now: datetime, action: str) -> Decision:
        return self.fire("witness_begin", now=now, action=action)

    def witness_sign(self, *, now: datetime, credentials: Credentials) -> Decision:
        return self.fire("witness_sign", now=now, credentials=credentials)

    def witness_cancel(self, *, now: datetime) -> Decision:
        return self.fire("witness_cancel", now=now)

    def clear_lockout(self, *, now: datetime, admin: User, user_id: str, reason: str | None = None) -> Decision:
        return self.fire("clear_lockout", now=now, admin=admin, user_id=user_id, reason=reason)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE and self.user is not None

    @property
    def active_user_id(self) -> str | None:
        return self.user.id if self.is_active and self.user is not None else None

    def lockout_of(self, user_id: str) -> Lockout:
        return self.lockouts.get(user_id, Lockout())

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_not_locked_out(self, event: EventData) -> bool:
        return self._not_locked_out(arg(event, "credentials"), now_of(event))

    def _not_locked_out(self, credentials: Credentials, now: datetime) -> bool:
        record = self.lockout_of(credentials.user_id)
        if record.is_locked(now):
            until = "an administrator clears it" if record.until is None else record.until.isoformat()
            return self.refuse(
                "session.locked_out",
                f"user {credentials.user_id} is locked out until {until}",
                user=credentials.user_id,
                until=None if record.until is None else record.until.isoformat(),
            )
        if record.locked_at is not None:  # a timed lockout that has run out starts a fresh count
            self.lockouts[credentials.user_id] = Lockout()
        return True

    def guard_credentials(self, event: EventData) -> bool:
        return self._check_credentials(arg(event, "credentials"), now_of(event), OutcomeKind.LOGIN_FAILED)

    def _check_credentials(self, credentials: Credentials, now: datetime, failed_kind: OutcomeKind) -> bool:
        reason = None
        if credentials.user is None or credentials.user.id != credentials.user_id:
            reason = "unknown_user"
        elif credentials.failed:
            reason = "factor_failed"
        elif len(credentials.verified) < self.settings.min_login_factors:
            reason = "factors_insufficient"
        if reason is None:
            return True
        self._record_failure(credentials, now, failed_kind, reason)
        if reason == "factors_insufficient":
            return self.refuse(
                "session.factors_insufficient",
                f"login needs {self.settings.min_login_factors} verified factor(s); got {len(credentials.verified)}",
                user=credentials.user_id,
            )
        return self.refuse("auth.bad_credentials", "unknown user or wrong credentials", user=credentials.user_id)

    def _record_failure(self, credentials: Credentials, now: datetime, kind: OutcomeKind, reason: str) -> None:
        record = self.lockout_of(credentials.user_id)
        record = replace(record, failures=record.failures + 1)
        factors = sorted(f.value for f in credentials.verified | credentials.failed)
        self.emit(
            kind,
            now,
            actor_id=credentials.user_id,
            reason_code=reason,
            details={"factors": factors, "failures": record.failures, "cabinet_id": self.cabinet_id},
        )
        if record.failures >= self.settings.max_failed_logins:
            duration = self.settings.lockout_duration
            record = replace(record, locked_at=now, until=None if duration is None else now + duration)
            self.emit(
                OutcomeKind.LOCKED_OUT,
                now,
                actor_id=credentials.user_id,
                reason_code="too_many_failures",
                details={
                    "failures": record.failures,
                    "until": None if record.until is None else record.until.isoformat(),
                    "needs_admin": record.until is None,
                },
            )
        self.lockouts[credentials.user_id] = record

    def guard_usable(self, event: EventData) -> bool:
        credentials: Credentials = arg(event, "credentials")
        assert credentials.user is not None  # guard_credentials ran first
        return self._usable(credentials.user, now_of(event))

    def _usable(self, user: User, now: datetime) -> bool:
        if user.is_usable_at(now):
            return True
        code = "auth.user_inactive" if not user.active else "auth.user_expired"
        self.emit(OutcomeKind.LOGIN_FAILED, now, actor_id=user.id, reason_code=code.split(".")[1])
        return self.refuse(code, f"user {user.id} cannot log in: account expired or deactivated", user=user.id)

    def guard_witness(self, event: EventData) -> bool:
        now = now_of(event)
        credentials: Credentials = arg(event, "credentials")
        actor = self.user
        assert actor is not None and self.witness_action is not None
        if not self._not_locked_out(credentials, now):
            return False
        if not self._check_credentials(credentials, now, OutcomeKind.WITNESS_FAILED):
            return False
        witness = credentials.user
        assert witness is not None
        try:
            policy_action = WitnessedAction(self.witness_action) if self.witness_action in _POLICY_ACTIONS else None
            check_witness(actor, witness, now, required=True, action=policy_action)
        except SafetyError as error:
            return self.refuse_error(error)
        return True

    def guard_admin(self, event: EventData) -> bool:
        admin: User = arg(event, "admin")
        if admin.has(Privilege.ADMINISTER) and admin.is_usable_at(now_of(event)):
            return True
        return self.refuse(
            "policy.privilege_missing",
            f"user {admin.id} cannot clear lockouts",
            user=admin.id,
            privilege=Privilege.ADMINISTER.value,
        )

    # --- routing conditions for tick (they never refuse) --------------------------------------------------------

    def _idle(self, event: EventData) -> Any:
        assert self.last_activity is not None
        return now_of(event) - self.last_activity

    def is_expired(self, event: EventData) -> bool:
        return self.user is not None and not self.user.is_usable_at(now_of(event))

    def is_idle_out(self, event: EventData) -> bool:
        return bool(self._idle(event) >= self.settings.inactivity_logout)

    def is_idle_warn(self, event: EventData) -> bool:
        return bool(self._idle(event) >= self.settings.inactivity_warning)

    # --- callbacks ----------------------------------------------------------------------------------------------

    def on_login(self, event: EventData) -> None:
        now = now_of(event)
        credentials: Credentials = arg(event, "credentials")
        self.user = credentials.user
        self.factors = credentials.verified
        self.session_id += 1
        self.logged_in_at = self.last_activity = now
        self.lockouts.pop(credentials.user_id, None)
        self.emit(
            OutcomeKind.LOGIN,
            now,
            actor_id=credentials.user_id,
            details={
                "factors": sorted(f.value for f in credentials.verified),
                "session_id": self.session_id,
                "cabinet_id": self.cabinet_id,
            },
        )

    def _end(self, now: datetime, reason: str) -> None:
        assert self.user is not None
        details: dict[str, Any] = {"session_id": self.session_id, "cabinet_id": self.cabinet_id}
        if self.witness_action is not None:
            # The action stays pending in its own workflow; the entry says a witness step was open at logoff.
            details["witness_step_open"] = self.witness_action
        self.emit(OutcomeKind.LOGOUT, now, actor_id=self.user.id, reason_code=reason, details=details)
        self.user, self.factors, self.witness_action = None, frozenset(), None
        self.last_activity = None

    def on_logout(self, event: EventData) -> None:
        self._end(now_of(event), "user")

    def on_idle_out(self, event: EventData) -> None:
        self._end(now_of(event), "inactivity")

    def on_expired(self, event: EventData) -> None:
        assert self.user is not None
        self._end(now_of(event), "account_expired" if self.user.active else "account_disabled")

    def on_activity(self, event: EventData) -> None:
        self.last_activity = now_of(event)

    def on_witness_begin(self, event: EventData) -> None:
        self.witness_action = arg(event, "action")
        self.last_activity = now_of(event)

    def on_witness_signed(self, event: EventData) -> None:
        now = now_of(event)
        credentials: Credentials = arg(event, "credentials")
        assert self.user is not None and self.witness_action is not None
        self._signature = WitnessSignature(
            witness_id=credentials.user_id,
            actor_id=self.user.id,
            action=self.witness_action,
            factors=frozenset(f.value for f in credentials.verified),
            at=now,
            session_id=self.session_id,
        )
        self.lockouts.pop(credentials.user_id, None)
        self.on_witness_end(event)

    def on_witness_end(self, event: EventData) -> None:
        self.witness_action = None
        self.last_activity = now_of(event)

    def on_lockout_cleared(self, event: EventData) -> None:
        user_id: str = arg(event, "user_id")
        admin: User = arg(event, "admin")
        before = self.lockouts.pop(user_id, None)
        reason = arg(event, "reason")
        self.emit(
            OutcomeKind.LOCKOUT_CLEARED,
            now_of(event),
            actor_id=admin.id,
            reason_code="cleared_by_administrator",
            note=reason.strip() if isinstance(reason, str) and reason.strip() else None,
            details={
                "cleared_user_id": user_id,
                "failures": before.failures if before else 0,
                "was_locked": before is not None and before.locked_at is not None,
            },
        )


class Sessions(MachinePool):
    """The one session machine of a controller; ``new`` attaches a cabinet's session to it."""

    def __init__(self) -> None:
        super().__init__(SPEC)

    def new(self, cabinet_id: str, *, settings: FsmSettings | None = None, **kwargs: Any) -> Session:
        session = Session(cabinet_id, settings=settings, **kwargs)
        self.attach(session)
        return session
