"""Counts: a cycle count or a shift-change count of a list of (controlled) pockets, always blind.

Responsible for: who may count (a cycle count needs ``RESTOCK``; a shift-change count is done by the clinicians
who hold ``REMOVE``; schedule II pockets need ``ACCESS_SCHEDULE_II``); the order: the pockets are opened one after
the other as the count lists them (``next_pocket``), and a count is entered only for a pocket that was opened for
this count (``pocket_opened``, told by the engine from the sensors), so nobody types a number for a pocket they
never looked into; the blind entry of each pocket's count (the expected number never appears in ``view()``),
each pocket once; a ``COUNT_ENTERED`` outcome per pocket (naming the ledger entry of its opening) and a
``DISCREPANCY_RAISED`` outcome for each mismatch; done when every pocket is counted. Stopping early keeps what
was counted (each count is already its own entry); the rest is listed on the stop entry.

Not responsible for: choosing the pockets (the engine lists the controlled ones, or a cycle-count schedule),
unlocking or watching the drawers (the engine, through the compartments), resolving the discrepancies
(``discrepancy.py``), or writing anything.

Events (all take ``now``): ``begin``, ``pocket_opened(pocket_id, opened_seq)``, ``count_entered(pocket_id,
count)``, ``stop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from transitions import EventData

from controller.domain.users import Privilege, User
from controller.fsm.base import Decision, MachineSpec, OutcomeKind, Workflow, WorkflowPool, arg, now_of


class CountState(Enum):
    STARTED = "started"
    COUNTING = "counting"
    DONE = "done"
    STOPPED = "stopped"  # ended before every pocket was counted


class CountKind(StrEnum):
    CYCLE = "cycle_count"
    SHIFT_CHANGE = "shift_change_count"


_PRIVILEGE = {CountKind.CYCLE: Privilege.RESTOCK, CountKind.SHIFT_CHANGE: Privilege.REMOVE}


@dataclass(frozen=True, slots=True)
class CountLine:
    pocket_id: str
    item_id: str | None
    expected: int  # never shown
    controlled: bool = True
    schedule_ii: bool = False


C = CountState

TRANSITIONS: tuple[dict[str, Any], ...] = (
    {"trigger": "begin", "source": C.STARTED, "dest": C.COUNTING, "conditions": "guard_privilege"},
    {"trigger": "pocket_opened", "source": C.COUNTING, "dest": None, "conditions": ["guard_line", "guard_next"],
     "after": "on_opened"},
    {"trigger": "count_entered", "source": C.COUNTING, "dest": C.DONE,
     "conditions": ["guard_line", "guard_opened", "guard_count", "is_last"], "after": "on_count"},
    {"trigger": "count_entered", "source": C.COUNTING, "dest": None,
     "conditions": ["guard_line", "guard_opened", "guard_count"], "after": "on_count"},
    {"trigger": "stop", "source": [C.STARTED, C.COUNTING], "dest": C.STOPPED, "after": "on_stop"},
    # Ended without its user (logoff, inactivity, a restart): a pocket opened for it and not counted is an
    # undocumented access.
    {"trigger": "abandon", "source": [C.STARTED, C.COUNTING], "dest": C.STOPPED, "after": ["on_abandon", "on_stop"]},
)  # fmt: skip

SPEC = MachineSpec(name="count", states=CountState, initial=C.STARTED, transitions=TRANSITIONS)


class Count(Workflow):
    spec = SPEC

    def __init__(self, count_id: str, *, actor: User, kind: CountKind, lines: tuple[CountLine, ...]) -> None:
        super().__init__()
        if not lines:
            raise ValueError("a count needs at least one pocket")
        if len({line.pocket_id for line in lines}) != len(lines):
            raise ValueError("a pocket appears twice on the count")
        self.id = count_id
        self.actor = actor
        self.kind = kind
        self.lines = {line.pocket_id: line for line in lines}  # in counting order
        self.counted: dict[str, int] = {}
        self.opened: dict[str, int | None] = {}  # pocket -> ledger seq of its opening (None: already open)

    # --- typed entry points -------------------------------------------------------------------------------------

    def begin(self, *, now: datetime) -> Decision:
        return self.fire("begin", now=now)

    def pocket_opened(self, *, now: datetime, pocket_id: str, opened_seq: int | None) -> Decision:
        return self.fire("pocket_opened", now=now, pocket_id=pocket_id, opened_seq=opened_seq)

    def count_entered(self, *, now: datetime, pocket_id: str, count: int, opened_seq: int | None = None) -> Decision:
        """``opened_seq``: the entry of the pocket's opening, when it was not known as the pocket opened (the
        opening and the step that saw it are recorded in one transaction)."""
        return self.fire("count_entered", now=now, pocket_id=pocket_id, count=count, opened_seq=opened_seq)

    def stop(self, *, now: datetime) -> Decision:
        return self.fire("stop", now=now)

    def abandon(self, *, now: datetime, reason: str, accessed: tuple[str, ...] = ()) -> Decision:
        """``accessed``: pockets not opened as far as the sensors saw, but that may have been (the board cannot
        tell after a restart)."""
        return self.fire("abandon", now=now, reason=reason, accessed=accessed)

    @property
    def opened_not_counted(self) -> list[str]:
        return [p for p in self.lines if p in self.opened and p not in self.counted]

    @property
    def remaining(self) -> list[str]:
        return [p for p in self.lines if p not in self.counted]

    @property
    def next_pocket(self) -> str | None:
        """The pocket to open now: the first one on the list not yet counted."""
        remaining = self.remaining
        return remaining[0] if remaining else None

    @property
    def mismatches(self) -> list[str]:
        return [p for p, n in self.counted.items() if n != self.lines[p].expected]

    def view(self) -> dict[str, Any]:
        """Blind: which pockets are left, never what they should hold."""
        return {
            "count_id": self.id,
            "kind": self.kind.value,
            "state": self.state.value,
            "remaining": self.remaining,
            "counted": sorted(self.counted),
            "next": self.next_pocket,
            "opened": sorted(p for p in self.opened if p not in self.counted),
        }

    # --- guards -------------------------------------------------------------------------------------------------

    def guard_privilege(self, event: EventData) -> bool:
        actor = self.actor
        if not actor.is_usable_at(now_of(event)):
            code = "auth.user_inactive" if not actor.active else "auth.user_expired"
            return self.refuse(code, f"user {actor.id}: account expired or deactivated", user=actor.id)
        needed = [_PRIVILEGE[self.kind]]
        if any(line.schedule_ii for line in self.lines.values()):
            needed.append(Privilege.ACCESS_SCHEDULE_II)
        for privilege in needed:
            if not actor.has(privilege):
                return self.refuse(
                    "policy.privilege_missing",
                    f"user {actor.id} does not hold the {privilege.value} privilege",
                    user=actor.id,
                    privilege=privilege.value,
                )
        return True

    def guard_line(self, event: EventData) -> bool:
        pocket_id = arg(event, "pocket_id")
        if pocket_id not in self.lines or pocket_id in self.counted:
            return self.refuse(
                "workflow.count_line_unknown",
                f"pocket {pocket_id} is not on this count or was already counted",
                pocket=str(pocket_id),
            )
        return True

    def guard_next(self, event: EventData) -> bool:
        pocket_id = arg(event, "pocket_id")
        if pocket_id != self.next_pocket:
            return self.refuse(
                "workflow.count_out_of_order",
                f"pocket {pocket_id} is not next on this count; open {self.next_pocket} first",
                pocket=str(pocket_id),
                next=self.next_pocket,
            )
        return True

    def guard_opened(self, event: EventData) -> bool:
        pocket_id = arg(event, "pocket_id")
        if pocket_id not in self.opened:
            return self.refuse(
                "workflow.pocket_not_opened",
                f"pocket {pocket_id} has not been opened for this count: open it and look before entering a count",
                pocket=str(pocket_id),
            )
        return True

    def guard_count(self, event: EventData) -> bool:
        count = arg(event, "count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return self.refuse("workflow.invalid_quantity", f"a count is a whole number of zero or more: {count!r}")
        return True

    def is_last(self, event: EventData) -> bool:
        return self.remaining == [arg(event, "pocket_id")]

    # --- callbacks ----------------------------------------------------------------------------------------------

    def on_opened(self, event: EventData) -> None:
        self.opened.setdefault(arg(event, "pocket_id"), arg(event, "opened_seq"))

    def on_count(self, event: EventData) -> None:
        now = now_of(event)
        pocket_id: str = arg(event, "pocket_id")
        count: int = arg(event, "count")
        line = self.lines[pocket_id]
        self.counted[pocket_id] = count
        if self.opened.get(pocket_id) is None:
            self.opened[pocket_id] = arg(event, "opened_seq")
        fields: dict[str, Any] = {
            "actor_id": self.actor.id,
            "item_id": line.item_id,
            "pocket_id": pocket_id,
            "quantity_expected": line.expected,
            "quantity_actual": count,
        }
        details = {"count_id": self.id, "kind": self.kind.value, "controlled": line.controlled,
                   "opened_seq": self.opened[pocket_id]}  # fmt: skip
        self.emit(OutcomeKind.COUNT_ENTERED, now, **fields, reason_code=self.kind.value, details=details)
        if count != line.expected:
            self.emit(OutcomeKind.DISCREPANCY_RAISED, now, **fields, reason_code=f"{self.kind.value}_mismatch",
                      details=details)  # fmt: skip

    def on_abandon(self, event: EventData) -> None:
        accessed = set(self.opened_not_counted) | {p for p in arg(event, "accessed") if p not in self.counted}
        for pocket_id in (p for p in self.lines if p in accessed):
            line = self.lines[pocket_id]
            self.emit(OutcomeKind.UNDOCUMENTED_ACCESS, now_of(event), actor_id=self.actor.id, item_id=line.item_id,
                      pocket_id=pocket_id, quantity_expected=line.expected, reason_code="undocumented_access",
                      details={"count_id": self.id, "workflow_id": self.id, "workflow": "count",
                               "ended_by": arg(event, "reason")})  # fmt: skip

    def on_stop(self, event: EventData) -> None:
        if not self.remaining:
            return
        self.emit(
            OutcomeKind.COUNT_ENTERED,
            now_of(event),
            actor_id=self.actor.id,
            reason_code="count_stopped",
            details={"count_id": self.id, "kind": self.kind.value, "not_counted": self.remaining},
        )


class Counts(WorkflowPool[Count]):
    def __init__(self) -> None:
        super().__init__(SPEC)

    def start(self, count_id: str, *, actor: User, kind: CountKind, lines: tuple[CountLine, ...]) -> Count:
        count = Count(count_id, actor=actor, kind=kind, lines=lines)
        return self.adopt(count_id, count)
