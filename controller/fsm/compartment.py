"""One machine per drawer and per lidded pocket: what state its latch and door are in, and whether that is allowed.

Responsible for: letting an unlock be requested only with a grant issued to the active session for this very
compartment; several workflows of one session may hold a grant on one compartment at once (two items for the same
patient from one matrix drawer), each grant naming its workflow and dying with it (``revoke``); following the
engine's ``unlock_confirmed`` / ``unlock_failed`` and the sensors' ``opened``, ``closed``, ``latched``; openings the
I/O board counted but no sensor read saw (``opened_unseen``: between two polls, or while the controller was down):
an authorised one is recorded as opened and closed, any other is tamper; the left-open alarm (``tick(now)`` past
``left_open_limit``, raised once per opening); the tamper alarm when a door or lid opens without a live grant of
the current user; and, after a restart, ``restore(sensors)``: a compartment found open is breached, must be closed
and accounted for, and until then every new unlock in the cabinet is refused
(``block_unlocks_while_unaccounted``).

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

SHUT_NOT_GRANTED = [C.LOCKED, C.CLOSED, C.JAMMED, C.FAULT]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.BREACHED, "conditions": "is_door_open",
     "after": "on_found_open"},
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.LOCKED, "conditions": "is_latched"},
    {"trigger": "restore", "source": C.UNKNOWN, "dest": C.CLOSED},
    {"trigger": "unlock_requested", "source": C.LOCKED, "dest": C.UNLOCKING,
     "conditions": ["guard_cabinet_clear", "guard_grant"], "after": "on_unlock_requested"},
    # Another workflow of the same session joins a compartment already released or open for that session.
    {"trigger": "unlock_requested", "source": [C.UNLOCKED, C.OPEN], "dest": None,
     "conditions": ["guard_grant", "guard_joinable"], "after": "on_unlock_requested"},
    {"trigger": "unlock_confirmed", "source": C.UNLOCKING, "dest": C.UNLOCKED},
    {"trigger": "unlock_failed", "source": C.UNLOCKING, "dest": C.JAMMED, "conditions": "is_jam",
     "after": "on_unlock_failed"},
    {"trigger": "unlock_failed", "source": C.UNLOCKING, "dest": C.FAULT, "after": "on_unlock_failed"},
    {"trigger": "opened", "source": [C.UNLOCKING, C.UNLOCKED], "dest": C.OPEN, "conditions": "is_grant_holder",
     "after": "on_opened"},
    {"trigger": "opened", "source": [C.UNLOCKING, C.UNLOCKED, *SHUT_NOT_GRANTED, C.UNACCOUNTED],
     "dest": C.BREACHED, "after": "on_tamper"},
    {"trigger": "opened", "source": [C.OPEN, C.BREACHED], "dest": None},  # a repeated sensor edge
    # Openings only the board's counter saw; the compartment reads shut now (or open again, for OPEN).
    {"trigger": "opened_unseen", "source": [C.UNLOCKING, C.UNLOCKED], "dest": C.CLOSED,
     "conditions": "is_grant_holder", "after": "on_opened_unseen"},
    {"trigger": "opened_unseen", "source": [C.UNLOCKING, C.UNLOCKED, *SHUT_NOT_GRANTED], "dest": C.UNACCOUNTED,
     "after": "on_tamper_unseen"},
    {"trigger": "opened_unseen", "source": [C.BREACHED, C.UNACCOUNTED], "dest": None, "after": "on_tamper_unseen"},
    {"trigger": "opened_unseen", "source": C.OPEN, "dest": None, "after": "on_reopened_unseen"},
    {"trigger": "closed", "source": C.OPEN, "dest": C.CLOSED, "after": "on_closed"},
    {"trigger": "closed", "source": C.BREACHED, "dest": C.UNACCOUNTED, "after": "on_closed"},
    {"trigger": "closed", "source": [C.CLOSED, C.UNACCOUNTED, C.LOCKED], "dest": None},  # a repeated edge
    {"trigger": "latched", "source": [C.CLOSED, C.UNLOCKED], "dest": C.LOCKED, "after": "on_latched"},
    {"trigger": "latched", "source": [C.LOCKED, C.UNACCOUNTED], "dest": None},
    # The workflow a grant belongs to ended: the grant dies with it (an opening after this is tamper).
    {"trigger": "revoke", "source": list(C), "dest": None, "after": "on_revoke"},
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
        self.grants: dict[str, UnlockGrant] = {}  # workflow id -> its grant; all of one session and user
        self.opened_by: str | None = None  # who holds it open (for the closing entry), once opened
        self.last_holder: str | None = None  # who last had it open, until it latches (a latch failure names them)
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

    def opened_unseen(self, *, now: datetime, session: Session, count: int, seen_by: str) -> Decision:
        """``count`` openings the board counted that no sensor read saw; ``seen_by`` names the evidence."""
        return self.fire("opened_unseen", now=now, session=session, count=count, seen_by=seen_by)

    def revoke(self, *, now: datetime, workflow_id: str) -> Decision:
        return self.fire("revoke", now=now, workflow_id=workflow_id)

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

    @property
    def grant(self) -> UnlockGrant | None:
        """The first grant held (for views); ``grants`` holds every one."""
        return next(iter(self.grants.values()), None)

    def holds_grant(self, workflow_id: str) -> bool:
        return workflow_id in self.grants

    @property
    def workflow_ids(self) -> tuple[str, ...]:
        return tuple(self.grants)

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

    def guard_joinable(self, event: EventData) -> bool:
        grant: UnlockGrant = arg(event, "grant")
        holders = {(g.session_id, g.user_id) for g in self.grants.values()}
        if holders == {(grant.session_id, grant.user_id)}:
            return True
        what = "open" if self.state is C.OPEN else "released"
        return self.refuse(
            "compartment.busy",
            f"{self.id} is {what} for another access; close it (it relocks) before it is opened for this one",
            compartment=self.id,
        )

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
        return session.is_active and any(
            session.session_id == g.session_id and session.active_user_id == g.user_id for g in self.grants.values()
        )

    def is_left_open(self, event: EventData) -> bool:
        assert self.opened_at is not None
        return not self.left_open_alarmed and now_of(event) - self.opened_at >= self.cabinet.settings.left_open_limit

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _user(self) -> str | None:
        if self.opened_by is not None:
            return self.opened_by
        grant = self.grant
        return grant.user_id if grant is not None else self.last_holder

    def _grant_details(self) -> dict[str, Any]:
        grant = self.grant
        return {
            "compartment_id": self.id,
            "purpose": grant.purpose if grant else None,
            "workflow_id": grant.workflow_id if grant else None,
            "workflow_ids": list(self.grants),
        }

    def on_found_open(self, event: EventData) -> None:
        now = now_of(event)
        self.opened_at, self.left_open_alarmed = now, False
        self.emit(OutcomeKind.FOUND_OPEN, now, pocket_id=self.pocket_id, details={"compartment_id": self.id})

    def on_unlock_requested(self, event: EventData) -> None:
        grant: UnlockGrant = arg(event, "grant")
        self.grants[grant.workflow_id] = grant

    def on_unlock_failed(self, event: EventData) -> None:
        cause: UnlockFailure = arg(event, "cause")
        self.emit(
            OutcomeKind.UNLOCK_FAILED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            reason_code=cause.value,
            details={**self._grant_details()},
        )
        self.grants.clear()

    def on_opened(self, event: EventData) -> None:
        now = now_of(event)
        self.opened_at, self.left_open_alarmed = now, False
        grant = self.grant
        assert grant is not None
        self.opened_by = self.last_holder = grant.user_id
        self.emit(OutcomeKind.DRAWER_OPENED, now, actor_id=grant.user_id, pocket_id=self.pocket_id,
                  details=self._grant_details())  # fmt: skip

    def on_opened_unseen(self, event: EventData) -> None:
        """Opened and closed again between two reads, by the one it was released to: both entries, marked."""
        now = now_of(event)
        grant = self.grant
        assert grant is not None
        seen = {"seen_by": arg(event, "seen_by"), "openings": arg(event, "count")}
        self.emit(OutcomeKind.DRAWER_OPENED, now, actor_id=grant.user_id, pocket_id=self.pocket_id,
                  details={**self._grant_details(), **seen})  # fmt: skip
        self.emit(OutcomeKind.DRAWER_CLOSED, now, actor_id=grant.user_id, pocket_id=self.pocket_id,
                  details={"compartment_id": self.id, **seen})  # fmt: skip
        self.opened_at, self.opened_by = None, None
        self.last_holder = grant.user_id  # it was open in their hands, until it latches

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
            details={"compartment_id": self.id, "granted_to": self._user(), "workflow_ids": list(self.grants)},
        )
        self.grants.clear()
        self.opened_by = None

    def on_tamper_unseen(self, event: EventData) -> None:
        session: Session = arg(event, "session")
        self.emit(
            OutcomeKind.TAMPER,
            now_of(event),
            actor_id=session.active_user_id,
            pocket_id=self.pocket_id,
            reason_code="opened_without_unlock",
            details={
                "compartment_id": self.id,
                "granted_to": self._user(),
                "seen_by": arg(event, "seen_by"),
                "openings": arg(event, "count"),
            },
        )
        self.grants.clear()
        self.opened_by, self.opened_at = None, None

    def on_reopened_unseen(self, event: EventData) -> None:
        """Open in both reads, but the counter says it was shut and opened again in between: on the record."""
        self.emit(
            OutcomeKind.DRAWER_OPENED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            details={**self._grant_details(), "seen_by": arg(event, "seen_by"), "openings": arg(event, "count"),
                     "reopened": True},
        )  # fmt: skip

    def on_closed(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.DRAWER_CLOSED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            details={"compartment_id": self.id},
        )
        self.opened_at = None
        self.opened_by = None

    def on_latched(self, event: EventData) -> None:
        self.grants.clear()
        self.opened_by = self.last_holder = None

    def on_revoke(self, event: EventData) -> None:
        self.grants.pop(arg(event, "workflow_id"), None)

    def on_latch_failed(self, event: EventData) -> None:
        self.emit(
            OutcomeKind.LATCH_FAILED,
            now_of(event),
            actor_id=self._user(),
            pocket_id=self.pocket_id,
            reason_code="lock_not_engaged",
            details={"compartment_id": self.id},
        )
        self.grants.clear()
        self.opened_by = None

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
