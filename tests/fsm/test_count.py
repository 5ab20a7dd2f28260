"""Count rules: blind cycle and shift-change counts, who may count, pockets opened in the listed order, no count
for a pocket that was never opened, each pocket once, a discrepancy per mismatch."""

from __future__ import annotations

import pytest

from controller.domain.transactions import EventType
from controller.domain.users import Role
from controller.fsm.base import OutcomeKind
from controller.fsm.workflows.count import Count, CountKind, CountLine, Counts, CountState

from .helpers import NURSE, TECH, at, ok, refused, user

C = CountState
LINES = (CountLine("P-1", "morphine", 10, schedule_ii=True), CountLine("P-2", "lorazepam", 4))


def begun(kind: CountKind = CountKind.CYCLE, actor: object = TECH) -> Count:
    c = Counts().start("C1", actor=actor, kind=kind, lines=LINES)  # type: ignore[arg-type]
    ok(c.begin(now=at(0)))
    return c


def test_cycle_count_end_to_end_blind_and_in_order() -> None:
    c = begun()
    assert "10" not in str(c.view()) and c.view()["remaining"] == ["P-1", "P-2"]
    assert c.view()["next"] == "P-1"
    opened = ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=41))
    assert opened.outcomes == ()  # the opening itself is the compartment's entry
    assert c.view()["opened"] == ["P-1"]
    d = ok(c.count_entered(now=at(2), pocket_id="P-1", count=9))
    assert d.state is C.COUNTING and d.kinds() == (OutcomeKind.COUNT_ENTERED, OutcomeKind.DISCREPANCY_RAISED)
    entered, raised = d.outcomes
    assert entered.to_record().event_type is EventType.COUNT_ENTERED
    assert entered.details["opened_seq"] == 41  # the count names the entry of the opening it was made from
    assert (raised.pocket_id, raised.quantity_expected, raised.quantity_actual, raised.actor_id) == (
        "P-1", 10, 9, "TECH1",
    )  # fmt: skip
    assert raised.reason_code == "cycle_count_mismatch" and c.mismatches == ["P-1"]
    assert c.view()["next"] == "P-2" and c.view()["opened"] == []
    ok(c.pocket_opened(now=at(3), pocket_id="P-2", opened_seq=None))  # already open (same matrix drawer)
    d = ok(c.count_entered(now=at(4), pocket_id="P-2", count=4))
    assert d.state is C.DONE and d.kinds() == (OutcomeKind.COUNT_ENTERED,)
    assert c.view()["next"] is None


def test_no_count_for_a_pocket_that_was_never_opened() -> None:
    c = begun()
    refused(c.count_entered(now=at(1), pocket_id="P-1", count=10), "workflow.pocket_not_opened")
    assert c.counted == {}


def test_pockets_are_opened_in_the_listed_order() -> None:
    c = begun()
    refused(c.pocket_opened(now=at(1), pocket_id="P-2", opened_seq=7), "workflow.count_out_of_order")
    refused(c.count_entered(now=at(2), pocket_id="P-2", count=4), "workflow.pocket_not_opened")
    refused(c.pocket_opened(now=at(3), pocket_id="P-9", opened_seq=8), "workflow.count_line_unknown")


def test_shift_change_count_by_a_nurse() -> None:
    c = begun(CountKind.SHIFT_CHANGE, NURSE)
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=3))
    d = ok(c.count_entered(now=at(1), pocket_id="P-1", count=10))
    assert d.outcomes[0].reason_code == "shift_change_count"


@pytest.mark.parametrize(
    ("kind", "actor", "code"),
    [
        (CountKind.CYCLE, NURSE, "policy.privilege_missing"),
        (CountKind.SHIFT_CHANGE, TECH, "policy.privilege_missing"),
        (CountKind.CYCLE, user("T9", Role.TECHNICIAN, revoked_privileges=frozenset({"access_schedule_ii"})),
         "policy.privilege_missing"),
        (CountKind.CYCLE, user("T8", Role.TECHNICIAN, active=False), "auth.user_inactive"),
    ],
)  # fmt: skip
def test_who_may_count(kind: CountKind, actor: object, code: str) -> None:
    c = Counts().start("C1", actor=actor, kind=kind, lines=LINES)  # type: ignore[arg-type]
    refused(c.begin(now=at(0)), code)


@pytest.mark.parametrize(("pocket", "count", "code"), [
    ("P-9", 1, "workflow.count_line_unknown"),
    ("P-1", -1, "workflow.invalid_quantity"),
    ("P-1", True, "workflow.invalid_quantity"),
    ("P-1", 1.5, "workflow.invalid_quantity"),
])  # fmt: skip
def test_entry_guards(pocket: str, count: object, code: str) -> None:
    c = begun()
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=1))
    refused(c.count_entered(now=at(1), pocket_id=pocket, count=count), code)  # type: ignore[arg-type]


def test_each_pocket_is_counted_once() -> None:
    c = begun()
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=1))
    ok(c.count_entered(now=at(1), pocket_id="P-1", count=10))
    refused(c.count_entered(now=at(2), pocket_id="P-1", count=9), "workflow.count_line_unknown")
    refused(c.pocket_opened(now=at(2), pocket_id="P-1", opened_seq=2), "workflow.count_line_unknown")


def test_stopping_early_lists_what_was_not_counted() -> None:
    c = begun()
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=1))
    ok(c.count_entered(now=at(1), pocket_id="P-1", count=10))
    d = ok(c.stop(now=at(2)))
    assert d.state is C.STOPPED and d.outcomes[0].details["not_counted"] == ["P-2"]
    refused(c.count_entered(now=at(3), pocket_id="P-2", count=4), "fsm.event_not_allowed")
    refused(c.pocket_opened(now=at(3), pocket_id="P-2", opened_seq=3), "fsm.event_not_allowed")


def test_a_count_needs_distinct_pockets() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Counts().start("C1", actor=TECH, kind=CountKind.CYCLE, lines=())
    with pytest.raises(ValueError, match="twice"):
        Counts().start("C2", actor=TECH, kind=CountKind.CYCLE, lines=(LINES[0], LINES[0]))


# --- ending a count without its user (issue 12) ------------------------------------------------------------------

THREE = (*LINES, CountLine("P-3", "fentanyl", 2))


def test_abandon_raises_an_undocumented_access_per_pocket_opened_and_not_counted() -> None:
    c = Counts().start("C1", actor=TECH, kind=CountKind.CYCLE, lines=THREE)
    ok(c.begin(now=at(0)))
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=1))
    ok(c.count_entered(now=at(2), pocket_id="P-1", count=10))
    ok(c.pocket_opened(now=at(3), pocket_id="P-2", opened_seq=2))
    d = ok(c.abandon(now=at(4), reason="logoff"))
    assert d.state is C.STOPPED
    assert d.kinds() == (OutcomeKind.UNDOCUMENTED_ACCESS, OutcomeKind.COUNT_ENTERED)
    u, stop = d.outcomes
    assert (u.pocket_id, u.item_id, u.actor_id, u.quantity_expected, u.reason_code) == (
        "P-2", "lorazepam", "TECH1", 4, "undocumented_access",
    )  # fmt: skip
    assert (u.details["count_id"], u.details["ended_by"]) == ("C1", "logoff")
    assert u.to_record().event_type is EventType.DISCREPANCY_RAISED
    assert stop.reason_code == "count_stopped" and stop.details["not_counted"] == ["P-2", "P-3"]


def test_abandon_also_raises_one_for_each_pocket_that_may_have_been_accessed() -> None:
    c = Counts().start("C1", actor=TECH, kind=CountKind.CYCLE, lines=THREE)
    ok(c.begin(now=at(0)))
    ok(c.pocket_opened(now=at(1), pocket_id="P-1", opened_seq=1))
    ok(c.count_entered(now=at(2), pocket_id="P-1", count=10))
    ok(c.pocket_opened(now=at(3), pocket_id="P-2", opened_seq=2))
    # P-1 was counted (no access to report), P-2 is opened anyway, P-9 is not on the count
    d = ok(c.abandon(now=at(4), reason="controller_restarted", accessed=("P-3", "P-1", "P-2", "P-9")))
    kinds = d.kinds()
    assert kinds == (OutcomeKind.UNDOCUMENTED_ACCESS, OutcomeKind.UNDOCUMENTED_ACCESS, OutcomeKind.COUNT_ENTERED)
    assert [o.pocket_id for o in d.outcomes[:2]] == ["P-2", "P-3"]  # in counting order, each once
    assert all(o.details["ended_by"] == "controller_restarted" for o in d.outcomes[:2])


def test_abandon_before_anything_was_opened_only_stops() -> None:
    c = begun()
    d = ok(c.abandon(now=at(1), reason="inactivity"))
    assert d.state is C.STOPPED and d.kinds() == (OutcomeKind.COUNT_ENTERED,)
    assert d.outcomes[0].details["not_counted"] == ["P-1", "P-2"]
    refused(c.abandon(now=at(2), reason="inactivity"), "fsm.event_not_allowed")


def test_abandon_of_a_count_not_yet_begun() -> None:
    c = Counts().start("C1", actor=TECH, kind=CountKind.CYCLE, lines=LINES)
    d = ok(c.abandon(now=at(1), reason="controller_restarted", accessed=("P-1",)))
    assert d.state is C.STOPPED and d.kinds() == (OutcomeKind.UNDOCUMENTED_ACCESS, OutcomeKind.COUNT_ENTERED)
    assert d.outcomes[0].pocket_id == "P-1"
