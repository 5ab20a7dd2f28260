"""Discrepancy: a counted quantity that differs from the expected one, from raised to pharmacist-reviewed.

Responsible for: the deadline (``policies.discrepancy_deadline`` of when it was raised) and escalation to pharmacy
on ``tick`` past it (an escalated discrepancy is still resolved and reviewed the same way); resolution by two
people: a resolver holding ``RESOLVE_DISCREPANCY`` and a witness (a ``WitnessSignature`` for the resolver and
``DISCREPANCY_RESOLUTION``, already checked by ``Session.witness_sign`` through ``check_witness``) whenever
``policies.witness_required`` lists it, with a ``DiscrepancyReason`` code; the pharmacist review (``REVIEW``
privilege; never the resolver or the witness); and ``discrepancy_blocks``, the pure answer to "does this user have
an open controlled-substance discrepancy on this pocket" that the pull machine takes as ``open_cs_discrepancy``.

An undocumented access (``kind`` ``undocumented_access``: a pocket was unlocked or opened and the access never
closed out) has no count yet; it is resolved only once the pocket has been counted since it was raised
(``counted_seq``, the engine reads it from the ledger), and for a controlled substance always with a witness.

Not responsible for: raising it (the pull, count and restock machines emit ``DISCREPANCY_RAISED``; the engine opens
a ``Discrepancy`` from that outcome with ``Discrepancies.open_from``, which records nothing again), adjusting stock
(a count adjustment is the engine's, after review), DEA loss reports, or writing anything.

Events (all take ``now``): ``resolve(resolver, signature, reason, note)``, ``review(reviewer, note)``, ``tick``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.policies import Policy, WitnessedAction, discrepancy_deadline, witness_required
from controller.domain.users import Privilege, User
from controller.fsm.base import (
    Decision,
    MachineSpec,
    Outcome,
    OutcomeKind,
    WitnessSignature,
    Workflow,
    WorkflowPool,
    arg,
    now_of,
)

RESOLUTION_WITNESS = WitnessedAction.DISCREPANCY_RESOLUTION.value
COUNT_MISMATCH = "count_mismatch"
UNDOCUMENTED_ACCESS = "undocumented_access"


class DiscrepancyState(Enum):
    OPEN = "open"
    ESCALATED = "escalated"  # unresolved at the deadline: pharmacy has been told; still resolvable
    RESOLVED = "resolved"  # by two people, with a reason; waits for the pharmacist
    REVIEWED = "reviewed"  # closed


class DiscrepancyReason(StrEnum):
    MISCOUNT_PREVIOUS = "miscount_previous"  # the previous count was wrong
    MISCOUNT_CURRENT = "miscount_current"  # the count that raised it was wrong
    UNDOCUMENTED_REMOVAL = "undocumented_removal"
    UNDOCUMENTED_WASTE = "undocumented_waste"
    UNDOCUMENTED_RETURN = "undocumented_return"
    RESTOCK_ERROR = "restock_error"
    UNRESOLVED_UNKNOWN = "unresolved_unknown"  # cause not found: pharmacy investigates (possible loss)


@dataclass(frozen=True, slots=True)
class DiscrepancyView:
    """What other machines and the UI need of a discrepancy. ``involved`` are the users whose accesses it
    concerns (the one who counted, and whoever the engine attributes it to)."""

    discrepancy_id: str
    pocket_id: str
    item_id: str | None
    controlled: bool
    state: DiscrepancyState
    raised_by: str | None
    involved: frozenset[str] = field(default=frozenset())

    @property
    def is_open(self) -> bool:
        return self.state in (DiscrepancyState.OPEN, DiscrepancyState.ESCALATED)


def discrepancy_blocks(views: Iterable[DiscrepancyView], *, user_id: str, pocket_id: str) -> bool:
    """Does ``user_id`` have an open (unresolved) controlled-substance discrepancy on ``pocket_id``?"""
    return any(
        v.is_open and v.controlled and v.pocket_id == pocket_id and (user_id == v.raised_by or user_id in v.involved)
        for v in views
    )


D = DiscrepancyState
UNRESOLVED = [D.OPEN, D.ESCALATED]

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "resolve", "source": UNRESOLVED, "dest": D.RESOLVED,
     "conditions": ["guard_resolver", "guard_counted", "guard_reason", "guard_witness"], "after": "on_resolved"},
    {"trigger": "review", "source": D.RESOLVED, "dest": D.REVIEWED, "conditions": "guard_reviewer",
     "after": "on_reviewed"},
    {"trigger": "tick", "source": D.OPEN, "dest": D.ESCALATED, "conditions": "is_overdue", "after": "on_escalated"},
    {"trigger": "tick", "source": list(D), "dest": None},
)  # fmt: skip

SPEC = MachineSpec(
    name="discrepancy",
    states=DiscrepancyState,
    initial=D.OPEN,
    transitions=TRANSITIONS,
    refusals={(s, "review"): "workflow.not_resolved" for s in UNRESOLVED},
)


class Discrepancy(Workflow):
    """One discrepancy on one pocket: ``expected`` against ``counted``, raised at ``raised_at``."""

    spec = SPEC

    def __init__(
        self,
        discrepancy_id: str,
        *,
        raised_at: datetime,
        pocket_id: str,
        item_id: str | None,
        controlled: bool,
        expected: int,
        counted: int | None,
        raised_by: str | None,
        policy: Policy,
        involved: frozenset[str] = frozenset(),
        source: str | None = None,
        kind: str = COUNT_MISMATCH,
        workflow_id: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.workflow_id = workflow_id
        self.id = discrepancy_id
        self.raised_at = raised_at
        self.pocket_id = pocket_id
        self.item_id = item_id
        self.controlled = controlled
        self.expected = expected
        self.counted = counted
        self.raised_by = raised_by
        self.involved = involved
        self.source = source
        self.policy = policy
        self.deadline = discrepancy_deadline(policy, raised_at)
        self.escalated_at: datetime | None = None
        self.resolver_id: str | None = None
        self.witness_id: str | None = None
        self.reason: DiscrepancyReason | None = None
        self.reviewer_id: str | None = None

    # --- typed entry points -------------------------------------------------------------------------------------

    def resolve(
        self,
        *,
        now: datetime,
        resolver: User,
        signature: WitnessSignature | None,
        reason: DiscrepancyReason | str | None,
        note: str | None = None,
        counted_seq: int | None = None,
    ) -> Decision:
        """``counted_seq``: the ledger entry of a count of the pocket entered since this was raised, if any."""
        return self.fire("resolve", now=now, resolver=resolver, signature=signature, reason=reason, note=note,
                         counted_seq=counted_seq)  # fmt: skip

    def review(self, *, now: datetime, reviewer: User, note: str | None = None) -> Decision:
        return self.fire("review", now=now, reviewer=reviewer, note=note)

    def tick(self, *, now: datetime) -> Decision:
        return self.fire("tick", now=now)

    @property
    def witness_required(self) -> bool:
        if self.kind == UNDOCUMENTED_ACCESS and self.controlled:
            return True  # a controlled substance accessed off the record: two people close it, whatever the policy
        return witness_required(self.policy, WitnessedAction.DISCREPANCY_RESOLUTION, None)

    def view(self) -> DiscrepancyView:
        return DiscrepancyView(
            discrepancy_id=self.id,
            pocket_id=self.pocket_id,
            item_id=self.item_id,
            controlled=self.controlled,
            state=DiscrepancyState(self.state),
            raised_by=self.raised_by,
            involved=self.involved,
        )

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_resolver(self, event: EventData) -> bool:
        resolver: User = arg(event, "resolver")
        return _privileged(self, resolver, Privilege.RESOLVE_DISCREPANCY, now_of(event))

    def guard_counted(self, event: EventData) -> bool:
        if self.kind != UNDOCUMENTED_ACCESS or arg(event, "counted_seq") is not None:
            return True
        return self.refuse(
            "workflow.count_required",
            f"count {self.pocket_id} (blind) first: an undocumented access is resolved only after the pocket has "
            "been counted",
            discrepancy=self.id,
            pocket=self.pocket_id,
        )

    def guard_reason(self, event: EventData) -> bool:
        if _reason(arg(event, "reason")) is None:
            return self.refuse(
                "workflow.reason_required",
                f"choose a resolution reason: {', '.join(r.value for r in DiscrepancyReason)}",
                discrepancy=self.id,
            )
        return True

    def guard_witness(self, event: EventData) -> bool:
        signature: WitnessSignature | None = arg(event, "signature")
        resolver: User = arg(event, "resolver")
        if signature is None and not self.witness_required:
            return True
        return self.accept_signature(signature, resolver.id, RESOLUTION_WITNESS)

    def guard_reviewer(self, event: EventData) -> bool:
        reviewer: User = arg(event, "reviewer")
        if not _privileged(self, reviewer, Privilege.REVIEW, now_of(event)):
            return False
        if reviewer.id in (self.resolver_id, self.witness_id):
            return self.refuse(
                "workflow.reviewer_conflict",
                f"{reviewer.id} resolved or witnessed discrepancy {self.id}; another pharmacist must review it",
                discrepancy=self.id,
                reviewer=reviewer.id,
            )
        return True

    # --- routing conditions -------------------------------------------------------------------------------------

    def is_overdue(self, event: EventData) -> bool:
        return now_of(event) >= self.deadline

    # --- callbacks ----------------------------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "pocket_id": self.pocket_id,
            "quantity_expected": self.expected,
            "quantity_actual": self.counted,
        }

    def _details(self, **extra: Any) -> dict[str, Any]:
        return {
            "discrepancy_id": self.id,
            "raised_at": self.raised_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "controlled": self.controlled,
            "discrepancy_kind": self.kind,
            **extra,
        }

    def on_escalated(self, event: EventData) -> None:
        now = now_of(event)
        self.escalated_at = now
        self.emit(
            OutcomeKind.DISCREPANCY_ESCALATED,
            now,
            **self._fields(),
            actor_id=self.raised_by,
            reason_code="unresolved_at_deadline",
            details=self._details(escalate_to="pharmacy"),
        )

    def on_resolved(self, event: EventData) -> None:
        resolver: User = arg(event, "resolver")
        signature: WitnessSignature | None = arg(event, "signature")
        self.resolver_id = resolver.id
        self.witness_id = signature.witness_id if signature else None
        self.reason = _reason(arg(event, "reason"))
        assert self.reason is not None
        self.emit(
            OutcomeKind.DISCREPANCY_RESOLVED,
            now_of(event),
            **self._fields(),
            actor_id=self.resolver_id,
            witness_id=self.witness_id,
            reason_code=self.reason.value,
            note=_note(arg(event, "note")),
            details=self._details(late=self.escalated_at is not None, counted_seq=arg(event, "counted_seq")),
        )

    def on_reviewed(self, event: EventData) -> None:
        reviewer: User = arg(event, "reviewer")
        self.reviewer_id = reviewer.id
        assert self.reason is not None
        self.emit(
            OutcomeKind.DISCREPANCY_REVIEWED,
            now_of(event),
            **self._fields(),
            actor_id=reviewer.id,
            reason_code=self.reason.value,
            note=_note(arg(event, "note")),
            details=self._details(resolver_id=self.resolver_id, resolution_witness_id=self.witness_id),
        )


def _privileged(model: Workflow, user: User, privilege: Privilege, now: datetime) -> bool:
    if not user.is_usable_at(now):
        code = "auth.user_inactive" if not user.active else "auth.user_expired"
        return model.refuse(code, f"user {user.id}: account expired or deactivated", user=user.id)
    if not user.has(privilege):
        return model.refuse(
            "policy.privilege_missing",
            f"user {user.id} does not hold the {privilege.value} privilege",
            user=user.id,
            privilege=privilege.value,
        )
    return True


def _reason(value: object) -> DiscrepancyReason | None:
    if isinstance(value, DiscrepancyReason):
        return value
    if isinstance(value, str):
        try:
            return DiscrepancyReason(value)
        except ValueError:
            return None
    return None


def _note(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class Discrepancies(WorkflowPool[Discrepancy]):
    """Every discrepancy of a controller, on one shared machine."""

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__(SPEC)
        self.policy = policy or Policy()

    def open(
        self,
        discrepancy_id: str,
        *,
        raised_at: datetime,
        pocket_id: str,
        item_id: str | None,
        controlled: bool,
        expected: int,
        counted: int,
        raised_by: str | None,
        involved: frozenset[str] = frozenset(),
        source: str | None = None,
    ) -> Discrepancy:
        discrepancy = Discrepancy(
            discrepancy_id,
            raised_at=raised_at,
            pocket_id=pocket_id,
            item_id=item_id,
            controlled=controlled,
            expected=expected,
            counted=counted,
            raised_by=raised_by,
            policy=self.policy,
            involved=involved,
            source=source,
        )
        return self.adopt(discrepancy_id, discrepancy)

    def open_from(self, discrepancy_id: str, raised: Outcome, *, controlled: bool) -> Discrepancy:
        """Open the discrepancy a ``DISCREPANCY_RAISED`` outcome (from a pull, count or restock) stands for."""
        if raised.kind is not OutcomeKind.DISCREPANCY_RAISED:
            raise ValueError(f"{raised.kind.value} does not raise a discrepancy")
        if raised.pocket_id is None or raised.quantity_expected is None or raised.quantity_actual is None:
            raise ValueError("a raised discrepancy names its pocket and both quantities")
        return self.open(
            discrepancy_id,
            raised_at=raised.at,
            pocket_id=raised.pocket_id,
            item_id=raised.item_id,
            controlled=controlled,
            expected=raised.quantity_expected,
            counted=raised.quantity_actual,
            raised_by=raised.actor_id,
            source=raised.reason_code,
        )

    def views(self) -> list[DiscrepancyView]:
        return [d.view() for d in self.by_id.values()]

    def blocks(self, *, user_id: str, pocket_id: str) -> bool:
        return discrepancy_blocks(self.views(), user_id=user_id, pocket_id=pocket_id)

    def tick(self, *, now: datetime) -> list[Decision]:
        return [d.tick(now=now) for d in self.by_id.values() if d.state in UNRESOLVED]
