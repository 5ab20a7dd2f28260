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
from controller.fsm.workflows.pull import REMOVAL_WITNESS, Pull, PullItem, Pulls, PullState

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
    assert d.state is P.CANCELLED and d.outcomes == ()


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
