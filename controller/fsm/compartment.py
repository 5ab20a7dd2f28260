"""One machine per drawer and per lidded pocket: what state its latch and door are in, and whether that is allowed.

Responsible for: letting an unlock be requested only with a grant issued to the active session for this very
compartment; following the engine's ``unlock_confirmed`` / ``unlock_failed`` and the sensors' ``opened``,
``closed``, ``latched``; the left-open alarm (``tick(now)`` past ``left_open_limit``, raised once per opening);
the tamper alarm when a door or lid opens without an unlock for the current user; and, after a restart,
``restore(sensors)``: a compartment found open is breached, must be closed and accounted for, and until then
every new unlock in the cabinet is refused (``block_unlocks_while_unaccounted``).

Not responsible for: driving the I/O board (the engine does it and reports back), deciding whether a removal is
allowed (the workflows do; they hand the engine an ``UnlockGrant``), or reading the clock.

States: unknown (until restored) → locked → unlocking → unlocked → open → closed → locked; jammed; fault;
breached (opened without authorisation, or found open) → unaccounted (closed again) → closed once accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.users import Privilege, User
from controller.fsm.base import Decision, MachineSpec, OutcomeKind, Workflow, WorkflowPool, arg, now_of
from controller.fsm.session import Session
from controller.fsm.settings import FsmSettings


class CompartmentState(Enum):
    UNKNOWN = "unknown"  # after a (re)start, until restore() has read the sensors
    LOCKED = "locked"
    UNLOCKING = "unlocking"  # the engine is commanding the latch
    UNLOCKED = "unlocked"  # latch released, door not yet opened
    OPEN = "open"
    CLOSED = "closed"  # door shut, latch not yet confirmed
    JAMMED = "jammed"
    FAULT = "fault"
    BREACHED = "breached"  # open without an authorised unlock: tamper, or found open after a restart
    UNACCOUNTED = "unaccounted"  # a breached compartment closed again; someone must account for it


class UnlockFailure(StrEnum):
    JAMMED = "jammed"  # the drawer did not move: mechanical
    LOCK_FAULT = "lock_fault"  # the latch did not report released
    NO_RESPONSE = "no_response"  # the board did not answer in time


@dataclass(frozen=True, slots=True)
class UnlockGrant:
    """Issued by a workflow for one access: this session's user may open this compartment."""

    session_id: int
    user_id: str
    compartment_id: str
    purpose: str  # "pull", "return", "restock", "count", ...
    workflow_id: str = ""


@dataclass(frozen=True, slots=True)
class SensorReading:
    door_open: bool
    latched: bool


C = CompartmentState
ANY_KNOWN = [s for s in C if s is not C.UNKNOWN]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.BREACHED, "conditions": "is_door_open",
     "after": "on_found_open"},
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.LOCKED, "conditions": "is_latched"},
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.CLOSED},
    {"trigger": "unlock_requested", "source": C.LOCKED, "dest": C.UNLOCKING,
     "conditions": ["guard_cabinet_clear", "guard_grant"], "after": "on_unlock_requested"},
    {"trigger": "unlock_confirmed", "source": C.UNLOCKING, "dest": C.UNLOCKED},
    {"trigger": "unlock_failed", "source": C.UNLOCKING, "dest": C.JAMMED, "conditions": "is_jam",
     "after": "on_unlock_failed"},
    {"trigger": "unlock_failed", "source": C.UNLOCKING, "dest": C.FAULT, "after": "on_unlock_failed"},
    {"trigger": "opened", "source": [C.UNLOCKING, C.UNLOCKED], "dest": C.OPEN, "conditions": "is_grant_holder",
     "after": "on_opened"},
    {"trigger": "opened", "source": [C.UNLOCKING, C.UNLOCKED, C.LOCKED, C.CLOSED, C.JAMMED, C.FAULT],
     "dest": C.BREACHED, "after": "on_tamper"},
    {"trigger": "opened", "source": [C.OPEN, C.BREACHED], "dest": None},  # a repeated sensor edge
    {"trigger": "closed", "source": C.OPEN, "dest": C.CLOSED, "after": "on_closed"},
    {"trigger": "closed", "source": C.BREACHED, "dest": C.UNACCOUNTED, "after": "on_closed"},
    {"trigger": "closed", "source": [C.CLOSED, C.UNACCOUNTED, C.LOCKED], "dest": None},  # a repeated edge
    {"trigger": "latched", "source": [C.CLOSED, C.UNLOCKED], "dest": C.LOCKED, "after": "on_latched"},
    {"trigger": "latched", "source": [C.LOCKED, C.UNACCOUNTED], "dest": None},
    {"trigger": "latch_failed", "source": C.CLOSED, "dest": C.FAULT, "after": "on_latch_failed"},
    {"trigger": "accounted_for", "source": C.UNACCOUNTED, "dest": C.CLOSED, "conditions": "guard_accountable",
     "after": "on_accounted_for"},
    {"trigger": "service_reset", "source": [C.JAMMED, C.FAULT], "dest": C.CLOSED, "conditions": "guard_service",
     "after": "on_service_reset"},
    {"trigger": "tick", "source": C.OPEN, "dest": None, "conditions": "is_left_open", "after": "on_left_open"},
    {"trigger": "tick", "source": list(C), "dest": None},
)  # fmt: skip

_NOT_RESTORED: dict[tuple[Enum, str], str] = {
    (C.UNKNOWN, e): "compartment.unaccounted" for e in ("unlock_requested", "opened", "closed")
}
SPEC = MachineSpec(
    name="compartment",
    states=CompartmentState,
    initial=C.UNKNOWN,
    transitions=TRANSITIONS,
    refusals={
        **_NOT_RESTORED,
        (C.BREACHED, "unlock_requested"): "compartment.unaccounted",
        (C.UNACCOUNTED, "unlock_requested"): "compartment.unaccounted",
    },
)

_SERVICE_PRIVILEGES = frozenset({Privilege.RESTOCK, Privilege.REVIEW, Privilege.ADMINISTER})


class Compartment(Workflow):
    """A drawer (``pocket_id`` None) or a lidded pocket of a drawer."""

    spec = SPEC

    def __init__(self, compartment_id: str, cabinet: Compartments, *, pocket_id: str | None = None) -> None:
        super().__init__()
        self.id = compartment_id
        self.pocket_id = pocket_id
        self.cabinet = cabinet
        self.grant: UnlockGrant | None = None
        self.opened_at: datetime | None = None
        self.left_open_alarmed = False

    # --- typed entry points -------------------------------------------------------------------------------------

    def restore(self, *, now: datetime, sensors: SensorReading) -> Decision:
        return self.fire("restore", now=now, sensors=sensors)

    def unlock_requested(self, *, now: datetime, session: Session, grant: UnlockGrant) -> Decision:
        return self.fire("unlock_requested", now=now, session=session, grant=grant)

    def unlock_confirmed(self, *, now: datetime) -> Decision:
        return self.fire("unlock_confirmed", now=now)

    def unlock_failed(self, *, now: datetime, cause: UnlockFailure) -> Decision:
        return self.fire("unlock_failed", now=now, cause=cause)

    def opened(self, *, now: datetime, session: Session) -> Decision:
        return self.fire("opened", now=now, session=session)

    def closed(self, *, now: datetime) -> Decision:
        return self.fire("closed", now=now)

    def latched(self, *, now: datetime) -> Decision:
        return self.fire("latched", now=now)

    def latch_failed(self, *, now: datetime) -> Decision:
        return self.fire("latch_failed", now=now)

    def accounted_for(self, *, now: datetime, user: User, counted: int | None = None) -> Decision:
        return self.fire("accounted_for", now=now, user=user, counted=counted)

    def service_reset(self, *, now: datetime, user: User) -> Decision:
        return self.fire("service_reset", now=now, user=user)

    def tick(self, *, now: datetime) -> Decision:
        return self.fire("tick", now=now)

    @property
    def is_physically_open(self) -> bool:
        return self.state in (C.OPEN, C.BREACHED)

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_cabinet_clear(self, event: EventData) -> bool:
        if not self.cabinet.settings.block_unlocks_while_unaccounted:
            return True
        pending = [c for c in self.cabinet.unaccounted() if c != self.id]
        if not pending:
            return True
        return self.refuse(
            "compartment.unaccounted",
            f"close and account for {', '.join(pending)} before anything else is opened",
            compartments=pending,
        )

    def guard_grant(self, event: EventData) -> bool:
        session: Session = arg(event, "session")
        grant: UnlockGrant | None = arg(event, "grant")
        if not session.is_active:
            return self.refuse("session.not_active", "nobody is logged in at this cabinet")
        if (
            grant is None
            or grant.compartment_id != self.id
            or grant.session_id != session.session_id
            or grant.user_id != session.active_user_id
        ):
            return self.refuse(
                "compartment.not_authorised",
                f"no unlock of {self.id} was authorised for the active session",
                compartment=self.id,
                user=session.active_user_id,
            )
        return True

    def _privileged(self, event: EventData, what: str) -> bool:
        user: User = arg(event, "user")
        if user.privileges & _SERVICE_PRIVILEGES and user.is_usable_at(now_of(event)):
            return True
        return self.refuse(
            "policy.privilege_missing", f"user {user.id} cannot {what}", user=user.id, privilege="restock"
        )

    def guard_accountable(self, event: EventData) -> bool:
        return self._privileged(event, f"account for {self.id}")

    def guard_service(self, event: EventData) -> bool:
        return self._privileged(event, f"reset {self.id} after a fault")

    # --- routing conditions -------------------------------------------------------------------------------------

    def is_door_open(self, event: EventData) -> bool:
        sensors: SensorReading = arg(event, "sensors")
        return sensors.door_open

    def is_latched(self, event: EventData) -> bool:
        sensors: SensorReading = arg(event, "sensors")
        return sensors.latched

    def is_jam(self, event: EventData) -> bool:
        return bool(arg(event, "cause") is UnlockFailure.JAMMED)

    def is_grant_holder(self, event: EventData) -> bool:
        session: Session = arg(event, "session")
        return (
            self.grant is not None
            and session.is_active
            and session.session_id == self.grant.session_id
            and session.active_user_id == self.grant.user_id
        )

    def is_left_open(self, event: EventData) -> bool:
        assert self.opened_at is not None
        return not self.left_open_alarmed and now_of(event) - self.opened_at >= self.cabinet.settings.left_open_limit

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _user(self) -> str | None:
        return self.grant.user_id if self.grant is not None else None

    def on_found_open(self, event: EventData) -> None:
        now = now_of(event)
        self.opened_at, self.left_open_alarmed = now, False
        self.emit(OutcomeKind.FOUND_OPEN, now, pocket_id=self.pocket_id, details={"compartment_id": self.id})

    def on_unlock_requested(self, event: EventData) -> None:
        self.grant = arg(event, "grant")

    def on_unlock_failed(self, event: EventData) -> None:
        cause: UnlockFailure = arg(event, "cause")
        self.emit(
            OutcomeKind.UNLOCK_FAILED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            reason_code=cause.value,
            details={"compartment_id": self.id},
        )
        self.grant = None

    def on_opened(self, event: EventData) -> None:
        now = now_of(event)
        self.opened_at, self.left_open_alarmed = now, False
        assert self.grant is not None
        self.emit(
            OutcomeKind.DRAWER_OPENED,
            now,
            actor_id=self.grant.user_id,
            pocket_id=self.pocket_id,
            details={"compartment_id": self.id, "purpose": self.grant.purpose, "workflow_id": self.grant.workflow_id},
        )

    def on_tamper(self, event: EventData) -> None:
        now = now_of(event)
        session: Session = arg(event, "session")
        self.opened_at, self.left_open_alarmed = now, False
        self.emit(
            OutcomeKind.TAMPER,
            now,
            actor_id=session.active_user_id,
            pocket_id=self.pocket_id,
            reason_code="opened_without_unlock",
            details={"compartment_id": self.id, "granted_to": self._user()},
        )
        self.grant = None

    def on_closed(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.DRAWER_CLOSED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            details={"compartment_id": self.id},
        )
        self.opened_at = None

    def on_latched(self, event: EventData) -> None:
        self.grant = None

    def on_latch_failed(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.LATCH_FAILED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            reason_code="lock_not_engaged",
            details={"compartment_id": self.id},
        )
        self.grant = None

    def on_accounted_for(self, event: EventData) -> None:
        user: User = arg(event, "user")
        counted: int | None = arg(event, "counted")
        self.emit(
            OutcomeKind.ACCOUNTED_FOR,
            now_of(event),
            actor_id=user.id,
            pocket_id=self.pocket_id,
            quantity_actual=counted,
            details={"compartment_id": self.id},
        )

    def on_service_reset(self, event: EventData) -> None:
        user: User = arg(event, "user")
        self.emit(
            OutcomeKind.SERVICE_RESET,
            now_of(event),
            actor_id=user.id,
            pocket_id=self.pocket_id,
            details={"compartment_id": self.id},
        )

    def on_left_open(self, event: EventData) -> None:
        now = now_of(event)
        assert self.opened_at is not None
        self.left_open_alarmed = True
        self.emit(
            OutcomeKind.LEFT_OPEN,
            now,
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            reason_code="left_open",
            details={"compartment_id": self.id, "open_seconds": int((now - self.opened_at).total_seconds())},
        )


class Compartments(WorkflowPool[Compartment]):
    """Every compartment of one cabinet, on one shared machine."""

    def __init__(self, settings: FsmSettings | None = None) -> None:
        super().__init__(SPEC)
        self.settings = settings or FsmSettings()

    def add(self, compartment_id: str, *, pocket_id: str | None = None) -> Compartment:
        compartment = Compartment(compartment_id, self, pocket_id=pocket_id)
        return self.adopt(compartment_id, compartment)

    def __getitem__(self, compartment_id: str) -> Compartment:
        return self.by_id[compartment_id]

    def unaccounted(self) -> list[str]:
        """Compartments found open or opened without authorisation and not yet accounted for."""
        return sorted(c.id for c in self.by_id.values() if c.state in (C.BREACHED, C.UNACCOUNTED, C.UNKNOWN))
