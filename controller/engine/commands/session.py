"""Commands of the cabinet session: who logs in and out, an administrator clearing a lockout, and time passing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.domain.users import User
from controller.engine.commands.base import Answers, Returns
from controller.engine.results import Payload


@dataclass(frozen=True, slots=True)
class SessionStarted(Payload):
    user_id: str
    session_id: int


@dataclass(frozen=True, slots=True)
class SessionStep(Payload):
    """A session step: ``state`` of the session afterwards; what it recorded (a logout ends the user's workflows,
    so its entries include theirs)."""

    state: str
    ledger_seqs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LockoutCleared(Payload):
    user_id: str
    ledger_seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TickReport(Payload):
    session: str
    recorded: int  # ledger entries the time rules wrote


@dataclass(frozen=True, slots=True)
class Login(Returns[SessionStarted]):
    user_id: str
    pin: str | None = None
    badge: str | None = None


@dataclass(frozen=True, slots=True)
class Logout(Returns[SessionStep]):
    pass


@dataclass(frozen=True, slots=True)
class ClearLockout(Returns[LockoutCleared]):
    """An administrator clears ``user_id``'s lockout, saying why (one ledger entry)."""

    user_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tick(Returns[TickReport]):
    """Let time-driven rules run now (inactivity logoff, drawer left open, escalations, the refrigerator)."""


@dataclass(frozen=True, slots=True)
class SessionView(Payload):
    """Who is at the cabinet. ``user`` is the domain user (for access checks); ``to_data`` shows what a screen may."""

    state: str
    session_id: int
    user: User | None
    inactivity_warning_s: float
    inactivity_logout_s: float

    @property
    def is_active(self) -> bool:
        return self.user is not None

    def to_data(self) -> dict[str, Any]:
        user = self.user
        return {
            "session_id": self.session_id,
            "state": self.state,
            "user_id": user.id if user else None,
            "display_name": user.display_name if user else None,
            "roles": sorted(r.value for r in user.roles) if user else [],
            "privileges": sorted(p.value for p in user.privileges) if user else [],
            "inactivity_warning_s": self.inactivity_warning_s,
            "inactivity_logout_s": self.inactivity_logout_s,
        }


@dataclass(frozen=True, slots=True)
class GetSession(Answers[SessionView]):
    pass


@dataclass(frozen=True, slots=True)
class KeepAlive(Returns[SessionView]):
    """The person at the screen is still there (a call from the touchscreen): the session's inactivity timer
    restarts, if ``session_id`` is still the active session."""

    session_id: int
