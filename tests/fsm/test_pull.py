"""Pull rules: authorisation through the policy, one patient at a time, the blind count hiding the expected
number, mismatch continuing or stopping by policy, cancel refused after the drawer opened, quantity caps, and the
outcomes naming actor, patient, order and witness."""

from __future__ import annotations

import pytest

from controller.domain.medication import DeaSchedule
from controller.domain.policies import OverrideReason, Policy
from controller.fsm.base import OutcomeKind, WitnessSignature
from controller.fsm.session import Session, Sessions
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.pull import (
    AFTER_OPEN,
    BEFORE_UNLOCK,
    REMOVAL_WITNESS,
    TERMINAL,
    Pull,
    PullItem,
    PullRecord,
    Pulls,
    PullState,
    recover_pull,
)

from .helpers import CEFAZOLIN, MORPHINE, NALOXONE, NURSE, T0, at, logged_in, ok, order, refused

P = PullState


def setup(policy: Policy | None = None, settings: FsmSettings | None = None) -> tuple[Pulls, Session]:
    return Pulls(policy or Policy(), settings or FsmSettings()), logged_in(Sessions().new("CAB"))


def item(med: object = CEFAZOLIN, **kwargs: object) -> PullItem:
    values: dict[str, object] = {
        "medication": med,
        "pocket_id": "P-1",
        "compartment_id": "D1-P1",
        "expected_on_hand": 10,
        "profiled_area": True,
    }
    values.update(kwargs)
    return PullItem(**values)  # type: ignore[arg-type]


def started(pool: Pulls, s: Session, pull_id: str = "PULL-1", patient: str = "MRN-1") -> Pull:
    p = pool.start(pull_id, actor=NURSE, session_id=s.session_id)
    ok(p.select_patient(now=T0, patient_id=patient))
    return p


def through_open(p: Pull, s: Session) -> None:
    ok(p.unlock_requested(now=at(5), session=s))
    assert p.grant is not None and p.grant.compartment_id == "D1-P1" and p.grant.user_id == "NURSE1"
    ok(p.opened(now=at(6)))


def test_profiled_pull_against_an_order_end_to_end() -> None:
    pool, s = setup()
    p = started(pool, s)
    d = ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN), order_max_units=2)))
    assert d.state is P.READY  # cefazolin is not controlled: no blind count
    through_open(p, s)
    ok(p.take(now=at(7), quantity=2, lot_number="L1"))
    d = ok(p.closed(now=at(8)))
    assert d.state is P.DONE and d.kinds() == (OutcomeKind.DOSE_REMOVED,)
    removed = d.outcomes[0]
    assert (removed.actor_id, removed.patient_id, removed.order_id, removed.item_id, removed.pocket_id) == (
        "NURSE1", "MRN-1", "O1", "cefazolin", "P-1",
    )  # fmt: skip
    assert removed.quantity_change == -2 and removed.lot_number == "L1"
    assert removed.to_record().event_type.moves_stock


@pytest.mark.parametrize(
    ("pull_item", "code"),
    [
        (item(order=order("O1", CEFAZOLIN, verified=False)), "policy.order_not_verified"),
        (item(order=order("O1", CEFAZOLIN, patient_id="MRN-2")), "policy.order_not_verified"),
        (item(), "policy.override_not_listed"),
        (item(NALOXONE), "policy.override_reason_required"),
        (item(order=order("O1", CEFAZOLIN), open_cs_discrepancy=True), "workflow.discrepancy_open"),
    ],
)
def test_authorisation_refusals(pull_item: PullItem, code: str) -> None:
    pool, s = setup(Policy(override_items=frozenset({"naloxone"})))
    refused(started(pool, s).select_item(now=at(1), item=pull_item), code)


def test_override_is_recorded_for_review() -> None:
    pool, s = setup(Policy(override_items=frozenset({"naloxone"})))
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(NALOXONE, override_reason=OverrideReason.RESCUE)))
    assert p.view()["is_override"] is True
    through_open(p, s)
    ok(p.take(now=at(7), quantity=1))
    d = ok(p.closed(now=at(8)))
    assert d.kinds() == (OutcomeKind.DOSE_REMOVED, OutcomeKind.OVERRIDE)
    assert d.outcomes[1].reason_code == "rescue"


def test_discrepancy_block_is_a_policy_setting() -> None:
    pool, s = setup(settings=FsmSettings(open_cs_discrepancy_blocks_pulls=False))
    ok(started(pool, s).select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN), open_cs_discrepancy=True)))


def test_one_patient_at_a_time() -> None:
    pool, s = setup()
    started(pool, s, "A", "MRN-1")
    second = pool.start("B", actor=NURSE, session_id=s.session_id)
    refused(second.select_patient(now=at(1), patient_id="MRN-2"), "workflow.one_patient_at_a_time")
    ok(second.select_patient(now=at(1), patient_id="MRN-1"))  # same patient, second item: fine
    ok(pool.by_id["A"].cancel(now=at(2)))
    ok(second.cancel(now=at(2)))
    ok(pool.start("C", actor=NURSE, session_id=s.session_id).select_patient(now=at(3), patient_id="MRN-2"))


def blind(pool: Pulls, s: Session) -> Pull:
    p = started(pool, s)
    d = ok(p.select_item(now=at(1), item=item(MORPHINE, order=order("O2", MORPHINE), expected_on_hand=7)))
    assert d.state is P.BLIND_COUNT
    return p


def test_blind_count_hides_the_expected_number() -> None:
    pool, s = setup()
    p = blind(pool, s)
    view = p.view()
    assert view["blind_count_required"] is True
    assert 7 not in view.values() and "expected_on_hand" not in repr(view)
    refused(p.unlock_requested(now=at(2), session=s), "fsm.event_not_allowed")  # no opening before the count
    d = ok(p.count_entered(now=at(2), count=7))
    assert d.state is P.READY and d.kinds() == (OutcomeKind.COUNT_ENTERED,)
    assert (d.outcomes[0].quantity_expected, d.outcomes[0].quantity_actual) == (7, 7)  # the ledger gets both


@pytest.mark.parametrize(("stop", "state"), [(False, P.READY), (True, P.STOPPED)])
def test_blind_count_mismatch_by_policy(stop: bool, state: PullState) -> None:
    pool, s = setup(settings=FsmSettings(stop_pull_on_count_mismatch=stop))
    p = blind(pool, s)
    d = ok(p.count_entered(now=at(2), count=6))
    assert d.state is state
    assert d.kinds() == (OutcomeKind.COUNT_ENTERED, OutcomeKind.DISCREPANCY_RAISED)


@pytest.mark.parametrize("count", [-1, True, "7"])
def test_blind_count_must_be_a_whole_number(count: object) -> None:
    pool, s = setup()
    refused(blind(pool, s).count_entered(now=at(2), count=count), "workflow.invalid_quantity")  # type: ignore[arg-type]


@pytest.mark.parametrize("state_after", ["before_unlock", "unlocking"])
def test_cancel_before_open(state_after: str) -> None:
    pool, s = setup()
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN))))
    if state_after == "unlocking":
        ok(p.unlock_requested(now=at(2), session=s))
    d = ok(p.cancel(now=at(3)))
    assert d.state is P.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    (cancelled,) = d.outcomes
    assert cancelled.reason_code == "cancelled_by_user" and cancelled.actor_id == "NURSE1"
    assert cancelled.details["state_before"] == ("unlocking" if state_after == "unlocking" else "ready")


def test_cancel_refused_after_open_then_close_and_account() -> None:
    pool, s = setup()
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN))))
    through_open(p, s)
    refused(p.cancel(now=at(7)), "workflow.cancel_after_open")
    ok(p.closed(now=at(8)))
    refused(p.cancel(now=at(9)), "workflow.cancel_after_open")
    d = ok(p.take(now=at(10), quantity=0))
    assert d.state is P.DONE and d.outcomes[0].quantity_change == 0


def test_quantity_capped_by_the_order() -> None:
    pool, s = setup()
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN), order_max_units=1)))
    through_open(p, s)
    refused(p.take(now=at(7), quantity=2), "workflow.quantity_exceeds_order")
    refused(p.take(now=at(7), quantity=-1), "workflow.invalid_quantity")
    ok(p.take(now=at(7), quantity=1))


def test_unlock_failure_ends_the_pull_with_nothing_removed() -> None:
    pool, s = setup()
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN))))
    ok(p.unlock_requested(now=at(2), session=s))
    d = ok(p.unlock_failed(now=at(3)))
    assert d.state is P.FAILED and d.outcomes == ()


def test_unlock_needs_the_session_that_started_the_pull() -> None:
    pool, s = setup()
    p = started(pool, s)
    ok(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN))))
    ok(s.logout(now=at(2)))
    refused(p.unlock_requested(now=at(3), session=s), "session.not_active")


def test_witnessed_removal_when_configured() -> None:
    pool, s = setup(settings=FsmSettings(removal_witness_schedules=frozenset({DeaSchedule.II})))
    p = blind(pool, s)
    assert ok(p.count_entered(now=at(2), count=7)).state is P.AWAITING_WITNESS
    refused(p.witness_signed(now=at(3), signature=None), "policy.witness_required")
    own = WitnessSignature("NURSE1", "NURSE1", REMOVAL_WITNESS, frozenset({"pin"}), at(3), s.session_id)
    refused(p.witness_signed(now=at(3), signature=own), "policy.witness_is_actor")
    other = WitnessSignature("NURSE2", "NURSE1", "controlled_waste", frozenset({"pin"}), at(3), s.session_id)
    refused(p.witness_signed(now=at(3), signature=other), "policy.witness_required")
    good = WitnessSignature("NURSE2", "NURSE1", REMOVAL_WITNESS, frozenset({"pin"}), at(3), s.session_id)
    ok(p.witness_signed(now=at(3), signature=good))
    through_open(p, s)
    ok(p.take(now=at(7), quantity=1))
    assert ok(p.closed(now=at(8))).outcomes[0].witness_id == "NURSE2"


# --- ending a pull without its user, and after a restart (issue 12) ---------------------------------------------

WITNESSED = FsmSettings(removal_witness_schedules=frozenset({DeaSchedule.II}))


def driven_to(state: PullState, *, override: bool = False) -> tuple[Pull, Session]:
    """A witnessed, blind-counted morphine pull (expected on hand 7) brought to ``state`` the way the engine does;
    with ``override`` an unprofiled override of naloxone (no count, no witness) instead."""
    pool, s = setup(Policy(override_items=frozenset({"naloxone"})), WITNESSED)
    p = pool.start("PULL-1", actor=NURSE, session_id=s.session_id)
    signature = WitnessSignature("NURSE2", "NURSE1", REMOVAL_WITNESS, frozenset({"pin"}), at(3), s.session_id)
    chosen = (item(NALOXONE, expected_on_hand=7, override_reason=OverrideReason.RESCUE) if override
              else item(MORPHINE, order=order("O2", MORPHINE), expected_on_hand=7))  # fmt: skip
    steps = {
        P.STARTED: lambda: p.select_patient(now=T0, patient_id="MRN-1"),
        P.PATIENT_SELECTED: lambda: p.select_item(now=at(1), item=chosen),
        P.BLIND_COUNT: lambda: p.count_entered(now=at(2), count=7),
        P.AWAITING_WITNESS: lambda: p.witness_signed(now=at(3), signature=signature),
        P.READY: lambda: p.unlock_requested(now=at(4), session=s),
        P.UNLOCKING: lambda: p.opened(now=at(5)),
        P.OPEN: lambda: (
            p.closed(now=at(6)) if state is P.CLOSED_UNACCOUNTED else p.take(now=at(6), quantity=2, lot_number="L1")
        ),
    }
    while p.state is not state:
        assert p.state in steps, (p.state, state)
        ok(steps[p.state]())  # type: ignore[index]
    return p, s


def test_view_names_actor_and_session_and_never_the_expected_count() -> None:
    for state in (P.STARTED, P.PATIENT_SELECTED, P.BLIND_COUNT, P.AWAITING_WITNESS, P.READY, P.UNLOCKING, P.OPEN,
                  P.TAKEN, P.CLOSED_UNACCOUNTED):  # fmt: skip
        p, s = driven_to(state)
        view = p.view()
        assert (view["actor_id"], view["session_id"], view["state"]) == ("NURSE1", s.session_id, state.value)
        assert 7 not in view.values() and "expected" not in repr(view), view


def test_unlock_expired_ends_the_pull_failed_with_a_cancel_entry() -> None:
    p, _ = driven_to(P.UNLOCKING)
    d = ok(p.unlock_expired(now=at(40)))
    assert d.state is P.FAILED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    o = d.outcomes[0]
    assert (o.reason_code, o.actor_id, o.pocket_id, o.item_id) == ("not_opened_in_time", "NURSE1", "P-1", "morphine")
    assert o.details["pull_id"] == "PULL-1" and o.details["state_before"] == "unlocking"
    assert o.to_record().event_type.value == "workflow.cancelled"
    refused(p.opened(now=at(41)), "fsm.event_not_allowed")


@pytest.mark.parametrize("state", BEFORE_UNLOCK, ids=lambda s: s.name)
@pytest.mark.parametrize("accessed", [False, True])
def test_abandon_before_unlock_is_a_cancellation(state: PullState, accessed: bool) -> None:
    p, _ = driven_to(state)
    d = ok(p.abandon(now=at(50), reason="logoff", accessed=accessed))
    assert d.state is P.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    o = d.outcomes[0]
    assert (o.reason_code, o.actor_id, o.details["state_before"]) == ("logoff", "NURSE1", state.value)
    assert p.is_finished


def test_abandon_while_unlocking_and_not_accessed_is_a_cancellation() -> None:
    p, _ = driven_to(P.UNLOCKING)
    d = ok(p.abandon(now=at(50), reason="inactivity", accessed=False))
    assert d.state is P.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    assert d.outcomes[0].details["state_before"] == "unlocking"


@pytest.mark.parametrize("state", [P.UNLOCKING, *AFTER_OPEN], ids=lambda s: s.name)
def test_abandon_after_a_possible_access_is_an_undocumented_access(state: PullState) -> None:
    p, _ = driven_to(state)
    # an opened pull was accessed whatever the engine says; an unlocking one only when it says so
    d = ok(p.abandon(now=at(50), reason="logoff", accessed=state is P.UNLOCKING))
    assert d.state is P.UNDOCUMENTED and p.is_finished
    taken = 2 if state is P.TAKEN else None
    expected_kinds = (OutcomeKind.DOSE_REMOVED,) if taken else ()
    assert d.kinds() == (*expected_kinds, OutcomeKind.UNDOCUMENTED_ACCESS)
    u = d.outcomes[-1]
    assert (u.actor_id, u.patient_id, u.item_id, u.pocket_id) == ("NURSE1", "MRN-1", "morphine", "P-1")
    assert u.quantity_expected == 7 - (taken or 0) and u.reason_code == "undocumented_access"
    assert (u.details["pull_id"], u.details["state_before"], u.details["ended_by"]) == ("PULL-1", state.value,
                                                                                        "logoff")  # fmt: skip
    assert u.details["taken_declared"] == taken
    record = u.to_record()
    assert (
        record.event_type.value == "discrepancy.raised" and record.details["kind"] == "discrepancy.undocumented_access"
    )


def test_abandon_after_take_books_the_declared_take() -> None:
    p, _ = driven_to(P.TAKEN)
    d = ok(p.abandon(now=at(50), reason="shift_end", accessed=False))
    removed, undocumented = d.outcomes
    assert removed.kind is OutcomeKind.DOSE_REMOVED and undocumented.kind is OutcomeKind.UNDOCUMENTED_ACCESS
    assert (removed.quantity_change, removed.quantity_actual, removed.lot_number) == (-2, 2, "L1")
    assert (removed.witness_id, removed.order_id, removed.details["ended_by"]) == ("NURSE2", "O2", "shift_end")
    assert removed.details["blind_count"] == 7 and removed.to_record().event_type.moves_stock
    assert undocumented.quantity_expected == 5


def test_abandon_after_an_override_take_books_the_removal_and_the_override() -> None:
    p, _ = driven_to(P.TAKEN, override=True)
    d = ok(p.abandon(now=at(50), reason="logoff", accessed=False))
    assert d.kinds() == (OutcomeKind.DOSE_REMOVED, OutcomeKind.OVERRIDE, OutcomeKind.UNDOCUMENTED_ACCESS)
    assert d.outcomes[0].details["override"] is True and d.outcomes[1].reason_code == "rescue"
    assert d.outcomes[2].quantity_expected == 5


@pytest.mark.parametrize("state", sorted(TERMINAL, key=lambda s: s.value), ids=lambda s: s.name)
def test_a_finished_pull_cannot_be_abandoned(state: PullState) -> None:
    pool, _ = setup()
    p = pool.start("PULL-1", actor=NURSE, session_id=1)
    pool.machine.set_state(state, p)
    d = refused(p.abandon(now=at(1), reason="logoff", accessed=True), "fsm.event_not_allowed")
    assert d.outcomes == ()


def test_a_pocket_with_an_undocumented_access_is_blocked() -> None:
    pool, s = setup(settings=FsmSettings(open_cs_discrepancy_blocks_pulls=False))
    p = started(pool, s)
    d = refused(p.select_item(now=at(1), item=item(order=order("O1", CEFAZOLIN), undocumented_access=True)),
                "workflow.undocumented_access")  # fmt: skip
    assert d.refusal is not None and d.refusal.context["pocket"] == "P-1" and p.item is None
    ok(p.select_item(now=at(2), item=item(order=order("O1", CEFAZOLIN))))


def record_of(p: Pull) -> PullRecord:
    """The journal's copy of a live pull (what ``controller.engine`` writes at every step)."""
    item, auth = p.item, p.authorisation
    return PullRecord(
        pull_id=p.id,
        state=p.state,  # type: ignore[arg-type]
        actor_id=p.actor.id,
        session_id=p.session_id,
        patient_id=p.patient_id,
        order_id=item.order.id if item and item.order else None,
        item_id=item.medication.id if item else None,
        pocket_id=item.pocket_id if item else None,
        expected_on_hand=item.expected_on_hand if item else None,
        taken=p.taken,
        lot_number=p.lot_number,
        override=bool(auth and auth.is_override),
        reason=auth.reason.value if auth and auth.reason else None,
        blind_count=p.counted,
        witness_id=p.signature.witness_id if p.signature else None,
    )


_FIELDS = ("kind", "actor_id", "witness_id", "patient_id", "order_id", "item_id", "pocket_id", "lot_number",
           "quantity_expected", "quantity_actual", "quantity_change", "reason_code")  # fmt: skip
LIVE = [s for s in P if s not in TERMINAL]


@pytest.mark.parametrize("accessed", [False, True], ids=["not_accessed", "accessed"])
@pytest.mark.parametrize(
    ("state", "override"),
    [(s, False) for s in LIVE] + [(s, True) for s in LIVE if s not in (P.BLIND_COUNT, P.AWAITING_WITNESS)],
    ids=lambda v: getattr(v, "name", "override" if v else "ordered"),
)
def test_recover_pull_gives_what_abandon_gives(state: PullState, override: bool, accessed: bool) -> None:
    p, _ = driven_to(state, override=override)
    recovered = recover_pull(record_of(p), now=at(60), accessed=accessed)
    assert p.state is state  # pure: the live pull is untouched
    abandoned = ok(p.abandon(now=at(60), reason="controller_restarted", accessed=accessed)).outcomes
    assert [o.kind for o in recovered] == [o.kind for o in abandoned]
    for r, a in zip(recovered, abandoned, strict=True):
        assert [getattr(r, f) for f in _FIELDS] == [getattr(a, f) for f in _FIELDS], r.kind
        assert r.at == at(60)
        for key in ("pull_id", "state_before", "ended_by", "taken_declared", "override", "blind_count"):
            if key in a.details:
                assert r.details[key] == a.details[key], (r.kind, key)
        if r.kind is not OutcomeKind.OVERRIDE:
            assert r.details["ended_by"] == "controller_restarted"


@pytest.mark.parametrize(
    ("state", "accessed", "kinds"),
    [
        (P.READY, True, (OutcomeKind.WORKFLOW_CANCELLED,)),
        (P.UNLOCKING, False, (OutcomeKind.WORKFLOW_CANCELLED,)),
        (P.UNLOCKING, True, (OutcomeKind.UNDOCUMENTED_ACCESS,)),
        (P.OPEN, False, (OutcomeKind.UNDOCUMENTED_ACCESS,)),
        (P.CLOSED_UNACCOUNTED, False, (OutcomeKind.UNDOCUMENTED_ACCESS,)),
        (P.TAKEN, False, (OutcomeKind.DOSE_REMOVED, OutcomeKind.OVERRIDE, OutcomeKind.UNDOCUMENTED_ACCESS)),
    ],
)
def test_recover_pull_from_a_bare_record(state: PullState, accessed: bool, kinds: tuple[OutcomeKind, ...]) -> None:
    record = PullRecord("PULL-9", state, "NURSE1", 3, "MRN-1", None, "naloxone", "P-1", expected_on_hand=4,
                        taken=1 if state is P.TAKEN else None, override=True, reason="rescue")  # fmt: skip
    outcomes = recover_pull(record, now=at(1), accessed=accessed)
    assert tuple(o.kind for o in outcomes) == kinds
    last = outcomes[-1]
    assert (last.pocket_id, last.actor_id, last.details["pull_id"], last.details["state_before"]) == (
        "P-1", "NURSE1", "PULL-9", state.value,
    )  # fmt: skip
    if last.kind is OutcomeKind.UNDOCUMENTED_ACCESS:
        assert last.quantity_expected == 4 - (record.taken or 0)
    else:
        assert last.reason_code == "controller_restarted"
