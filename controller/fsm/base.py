"""What every machine shares: the decision a step returns, the outcome a ledger entry is made from, and the
small harness that runs a ``transitions`` machine so that a refused event always says which rule refused it.

Responsible for: the ``Decision`` / ``Outcome`` / ``Refusal`` types, the one table that maps outcome kinds to
ledger event types, the ``MachineSpec`` (a machine as data: states, initial state, transitions) and ``Workflow``,
the base of every model. Not responsible for: any rule (each machine module holds its own), writing the ledger,
reading the clock (``now`` always comes in as an argument) or touching hardware.

How a step runs: ``Workflow.fire(event, now=..., **values)`` first checks the event is declared from the current
state (if not, the refusal names the state and the event, or a more specific code from the machine's
``refusals`` table); then the machine runs it. Guards are transition conditions that return ``False`` and record a
``Refusal`` for an expected refusal; they never raise for one. Callbacks add ``Outcome`` s, one per ledger entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from transitions import EventData, Machine

from controller.domain.transactions import EventType, LedgerRecord
from controller.errors import CATALOGUE, ControllerError, SafetyError


class OutcomeKind(StrEnum):
    """What happened, precisely. ``EVENT_TYPE_FOR`` maps each kind to the ledger event type it is written as."""

    LOGIN = "session.login"
    LOGIN_FAILED = "session.login_failed"
    LOCKED_OUT = "session.locked_out"
    LOCKOUT_CLEARED = "session.lockout_cleared"
    LOGOUT = "session.logout"
    WITNESS_FAILED = "session.witness_failed"
    DRAWER_OPENED = "drawer.opened"
    DRAWER_CLOSED = "drawer.closed"
    TAMPER = "drawer.tamper"
    LEFT_OPEN = "drawer.left_open"
    FOUND_OPEN = "drawer.found_open"
    UNLOCK_FAILED = "drawer.unlock_failed"
    LATCH_FAILED = "drawer.latch_failed"
    ACCOUNTED_FOR = "drawer.accounted_for"
    SERVICE_RESET = "drawer.service_reset"
    DOSE_REMOVED = "dose.removed"
    OVERRIDE = "dose.override"
    COUNT_ENTERED = "count.entered"
    DISCREPANCY_RAISED = "discrepancy.raised"
    DISCREPANCY_ESCALATED = "discrepancy.escalated"
    DISCREPANCY_RESOLVED = "discrepancy.resolved"
    DISCREPANCY_REVIEWED = "discrepancy.reviewed"
    WASTE_RECORDED = "dose.wasted"
    WASTE_OVERDUE = "dose.waste_overdue"
    DOSE_RETURNED = "dose.returned"
    STOCK_RESTOCKED = "stock.restocked"
    STOCK_LOADED = "stock.loaded"
    STOCK_UNLOADED = "stock.unloaded"
    SCAN_REFUSED = "input.scan_refused"
    WASTE_PENDING = "dose.waste_pending"
    SHORT_DATED = "stock.short_dated"
    OVERRIDE_REVIEWED = "dose.override_reviewed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    UNDOCUMENTED_ACCESS = "discrepancy.undocumented_access"  # an access never closed out: a discrepancy


# The one place an outcome becomes a ledger event type. A few kinds share one on purpose (a failed witness sign-in
# is a failed authentication; accounting for a drawer and a service reset close it); ``details["kind"]`` always
# names the exact kind.
EVENT_TYPE_FOR: Mapping[OutcomeKind, EventType] = {
    OutcomeKind.LOGIN: EventType.LOGIN,
    OutcomeKind.LOGIN_FAILED: EventType.LOGIN_FAILED,
    OutcomeKind.LOCKED_OUT: EventType.USER_LOCKED_OUT,
    OutcomeKind.LOCKOUT_CLEARED: EventType.LOCKOUT_CLEARED,
    OutcomeKind.LOGOUT: EventType.LOGOUT,
    OutcomeKind.WITNESS_FAILED: EventType.LOGIN_FAILED,
    OutcomeKind.DRAWER_OPENED: EventType.DRAWER_OPENED,
    OutcomeKind.DRAWER_CLOSED: EventType.DRAWER_CLOSED,
    OutcomeKind.TAMPER: EventType.TAMPER_ALARM,
    OutcomeKind.LEFT_OPEN: EventType.DRAWER_LEFT_OPEN,
    OutcomeKind.FOUND_OPEN: EventType.TAMPER_ALARM,
    OutcomeKind.UNLOCK_FAILED: EventType.COMPARTMENT_FAULT,
    OutcomeKind.LATCH_FAILED: EventType.COMPARTMENT_FAULT,
    OutcomeKind.ACCOUNTED_FOR: EventType.DRAWER_CLOSED,
    OutcomeKind.SERVICE_RESET: EventType.DRAWER_CLOSED,
    OutcomeKind.DOSE_REMOVED: EventType.DOSE_REMOVED,
    OutcomeKind.OVERRIDE: EventType.OVERRIDE,
    OutcomeKind.COUNT_ENTERED: EventType.COUNT_ENTERED,
    OutcomeKind.DISCREPANCY_RAISED: EventType.DISCREPANCY_RAISED,
    OutcomeKind.DISCREPANCY_ESCALATED: EventType.DISCREPANCY_ESCALATED,
    OutcomeKind.DISCREPANCY_RESOLVED: EventType.DISCREPANCY_RESOLVED,
    OutcomeKind.DISCREPANCY_REVIEWED: EventType.DISCREPANCY_REVIEWED,
    OutcomeKind.WASTE_RECORDED: EventType.WASTE_RECORDED,
    OutcomeKind.WASTE_OVERDUE: EventType.WASTE_OVERDUE,
    OutcomeKind.DOSE_RETURNED: EventType.DOSE_RETURNED,
    OutcomeKind.STOCK_RESTOCKED: EventType.STOCK_RESTOCKED,
    OutcomeKind.STOCK_LOADED: EventType.STOCK_LOADED,
    OutcomeKind.STOCK_UNLOADED: EventType.STOCK_UNLOADED,
    OutcomeKind.SCAN_REFUSED: EventType.INPUT_REFUSED,
    OutcomeKind.WASTE_PENDING: EventType.WASTE_PENDING,
    OutcomeKind.SHORT_DATED: EventType.STOCK_SHORT_DATED,
    OutcomeKind.OVERRIDE_REVIEWED: EventType.OVERRIDE_REVIEWED,
    OutcomeKind.WORKFLOW_CANCELLED: EventType.WORKFLOW_CANCELLED,
    OutcomeKind.UNDOCUMENTED_ACCESS: EventType.DISCREPANCY_RAISED,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One fact the engine turns into exactly one ledger entry (``to_record``). ``at`` is when it happened."""

    kind: OutcomeKind
    at: datetime
    actor_id: str | None = None
    witness_id: str | None = None
    patient_id: str | None = None
    order_id: str | None = None
    item_id: str | None = None
    pocket_id: str | None = None
    lot_number: str | None = None
    quantity_expected: int | None = None
    quantity_actual: int | None = None
    quantity_change: int | None = None
    reason_code: str | None = None
    note: str | None = None  # optional free text next to the reason code (never instead of it)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> EventType:
        return EVENT_TYPE_FOR[self.kind]

    def to_record(self, device_state: Mapping[str, Any] | None = None) -> LedgerRecord:
        return LedgerRecord(
            event_type=self.event_type,
            actor_id=self.actor_id,
            witness_id=self.witness_id,
            patient_id=self.patient_id,
            order_id=self.order_id,
            item_id=self.item_id,
            pocket_id=self.pocket_id,
            lot_number=self.lot_number,
            quantity_expected=self.quantity_expected,
            quantity_actual=self.quantity_actual,
            quantity_change=self.quantity_change,
            reason_code=self.reason_code,
            note=self.note,
            device_state=dict(device_state or {}),
            details={"kind": self.kind.value, "occurred_at": self.at.isoformat(), **self.details},
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """An expected refusal: ``code`` is a catalogue code naming the rule, ``detail`` says it for a person."""

    code: str
    detail: str
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in CATALOGUE:
            raise KeyError(f"refusal code {self.code!r} is not in the catalogue")

    @classmethod
    def from_error(cls, error: ControllerError) -> Refusal:
        return cls(error.code, error.detail, dict(error.context))

    def as_error(self) -> SafetyError:
        """The refusal as the exception the API and HL7 boundaries translate (rule refusals are safety errors)."""
        return SafetyError(self.code, self.detail, **self.context)


@dataclass(frozen=True, slots=True)
class WitnessSignature:
    """A second person authenticated at the cabinet for one action of one actor; goes on that action's entry."""

    witness_id: str
    actor_id: str
    action: str  # a ``WitnessedAction`` value, or a workflow's own (e.g. "controlled_removal")
    factors: frozenset[str]
    at: datetime
    session_id: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What one step decided. A refused step may still carry outcomes (a failed login is a ledger entry)."""

    event: str
    accepted: bool
    state_before: Enum
    state: Enum
    outcomes: tuple[Outcome, ...] = ()
    refusal: Refusal | None = None
    signature: WitnessSignature | None = None  # set by a successful witness sign-off

    @property
    def refused(self) -> bool:
        return not self.accepted

    def kinds(self) -> tuple[OutcomeKind, ...]:
        return tuple(o.kind for o in self.outcomes)


TransitionSpec = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """A machine as data: its states, its initial state, every allowed transition, and specific refusal codes for
    events that are declared but not allowed from some state (anything else gets ``fsm.event_not_allowed``)."""

    name: str
    states: type[Enum]
    initial: Enum
    transitions: tuple[TransitionSpec, ...]
    refusals: Mapping[tuple[Enum, str], str] = field(default_factory=dict)

    @property
    def events(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.transitions:
            seen.setdefault(str(t["trigger"]), None)
        return tuple(seen)

    def events_from(self, state: Enum) -> frozenset[str]:
        return frozenset(str(t["trigger"]) for t in self.transitions if _covers(t["source"], state))

    def build(self) -> Machine:
        """One ``Machine`` per spec serves every model of that kind (add models with ``add_model``)."""
        return _Machine(
            model=None,
            states=self.states,
            initial=self.initial,
            transitions=[dict(t) for t in self.transitions],
            auto_transitions=False,
            queued=True,
            send_event=True,
            ignore_invalid_triggers=False,
            after_state_change="_mark_accepted",
            name=self.name,
        )


class _Machine(Machine):
    """A machine that binds nothing onto its models: a model's one entry point is ``Workflow.fire`` (and the typed
    methods built on it), which returns a ``Decision``. The triggers transitions would bind return a bare ``True``
    in queued mode even when a guard refused, which is exactly the silent path this layer exists to close."""

    def _checked_assignment(self, model: Any, name: str, func: Any) -> None:
        return None


class MachinePool:
    """One shared ``Machine`` for a spec and the models it serves (every compartment of a cabinet, every pull)."""

    def __init__(self, spec: MachineSpec) -> None:
        self.spec = spec
        self.machine = spec.build()

    def attach(self, model: Workflow, initial: Enum | None = None) -> None:
        model._machine = self.machine
        self.machine.add_model(model, initial=initial if initial is not None else self.spec.initial)

    def detach(self, model: Workflow) -> None:
        self.machine.remove_model(model)


W = TypeVar("W", bound="Workflow")


class WorkflowPool(MachinePool, Generic[W]):
    """A pool that keeps its workflows by id: one registry, one duplicate check, one place they are attached."""

    def __init__(self, spec: MachineSpec) -> None:
        super().__init__(spec)
        self.by_id: dict[str, W] = {}

    def adopt(self, workflow_id: str, workflow: W) -> W:
        if workflow_id in self.by_id:
            raise ValueError(f"{type(workflow).__name__.lower()} {workflow_id} already exists")
        self.attach(workflow)
        self.by_id[workflow_id] = workflow
        return workflow


def _covers(source: Any, state: Enum) -> bool:
    if source == "*":
        return True
    if isinstance(source, Sequence) and not isinstance(source, str):
        return state in source
    return bool(source == state)


class Workflow:
    """Base of every model. Subclasses set ``spec`` and are attached to one shared machine per spec."""

    spec: ClassVar[MachineSpec]
    state: Enum

    def __init__(self) -> None:
        self._machine: Machine | None = None
        self._refusal: Refusal | None = None
        self._outcomes: list[Outcome] = []
        self._accepted = False
        self._signature: WitnessSignature | None = None
        self._before: Enum | None = None  # the state the event being run started from (for callbacks)

    # --- running a step -----------------------------------------------------------------------------------------

    def fire(self, event: str, /, **values: Any) -> Decision:
        if self._machine is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a machine (MachinePool.attach)")
        before = self.state
        if event not in self.spec.events_from(before):
            code = self.spec.refusals.get((before, event), "fsm.event_not_allowed")
            if event not in self.spec.events:
                code = "fsm.unknown_event"
            refusal = Refusal(
                code,
                f"{self.spec.name}: '{event}' is not allowed while {before.name.lower()}",
                {"machine": self.spec.name, "state": before.name, "event": event},
            )
            return Decision(event, False, before, before, refusal=refusal)
        self._refusal, self._outcomes, self._accepted, self._signature = None, [], False, None
        self._before = before
        self._machine.events[event].trigger(self, **values)
        outcomes = tuple(self._outcomes)
        if self._accepted:
            return Decision(event, True, before, self.state, outcomes, signature=self._signature)
        refusal = self._refusal or Refusal(
            "fsm.event_not_allowed",
            f"{self.spec.name}: no transition for '{event}' from {before.name.lower()} with these values",
            {"machine": self.spec.name, "state": before.name, "event": event},
        )
        return Decision(event, False, before, self.state, outcomes, refusal)

    def _mark_accepted(self, event: EventData) -> None:
        self._accepted = True

    # --- helpers for guards and callbacks -----------------------------------------------------------------------

    def refuse(self, code: str, detail: str, **context: Any) -> bool:
        """Record why a guard refused; always returns ``False`` so a guard can ``return self.refuse(...)``."""
        if self._refusal is None:
            self._refusal = Refusal(code, detail, context)
        return False

    def refuse_error(self, error: ControllerError) -> bool:
        return self.refuse(error.code, error.detail, **error.context)

    def accept_signature(self, signature: WitnessSignature | None, actor_id: str, action: str) -> bool:
        """A signature is only ever made by ``Session.witness_sign`` (which checked the witness against the
        policy); here it must be for this actor and this action, and not the actor's own."""
        if signature is None:
            return self.refuse("policy.witness_required", "this action needs a second person to witness it")
        if signature.witness_id == actor_id:
            return self.refuse("policy.witness_is_actor", f"user {actor_id} cannot witness their own action")
        if signature.actor_id != actor_id or signature.action != action:
            return self.refuse(
                "policy.witness_required",
                f"the signature is for {signature.actor_id}'s {signature.action}, not {actor_id}'s {action}",
            )
        return True

    @property
    def state_before_event(self) -> str:
        """The value of the state the running event started from."""
        return str(self._before.value) if self._before is not None else ""

    def emit(self, kind: OutcomeKind, at: datetime, **fields: Any) -> Outcome:
        outcome = Outcome(kind=kind, at=at, **fields)
        self._outcomes.append(outcome)
        return outcome


def now_of(event: EventData) -> datetime:
    """Every event carries ``now`` (from the engine's injected clock); machines never read the time themselves."""
    now = event.kwargs.get("now")
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise TypeError(f"event '{event.event.name}' needs now=<aware datetime>")
    return now


def arg(event: EventData, name: str) -> Any:
    return event.kwargs.get(name)
