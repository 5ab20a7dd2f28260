"""Return rules: the one-way return bin by default, the original pocket only for sealed non-controlled items when
policy allows, quantity within what was removed, the controlled-return witness when policy lists it."""

from __future__ import annotations

import pytest

from controller.domain.policies import Policy, WitnessedAction
from controller.domain.transactions import EventType
from controller.fsm.base import OutcomeKind, WitnessSignature
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.returns import RETURN_WITNESS, Return, ReturnDestination, ReturnItem, Returns, ReturnState

from .helpers import CEFAZOLIN, MORPHINE, NURSE, at, ok, refused

R = ReturnState
BIN, POCKET = ReturnDestination.RETURN_BIN, ReturnDestination.ORIGINAL_POCKET


def start(med: object = CEFAZOLIN, *, sealed: bool = True, allow: bool = True, policy: Policy | None = None) -> Return:
    pool = Returns(policy, FsmSettings(return_sealed_to_pocket=allow))
    item = ReturnItem(
        medication=med,  # type: ignore[arg-type]
        quantity_removed=2,
        origin_pocket_id="P-1",
        return_bin_pocket_id="BIN-1",
        sealed=sealed,
        lot_number="L1",
        patient_id="MRN-1",
        pull_id="PULL-1",
    )
    return pool.start("R1", actor=NURSE, item=item)


def test_default_return_goes_to_the_bin_and_moves_stock_there() -> None:
    r = start()
    assert ok(r.choose(now=at(1), quantity=2)).state is R.READY
    d = ok(r.deposited(now=at(2)))
    assert d.state is R.DONE and d.kinds() == (OutcomeKind.DOSE_RETURNED,)
    o = d.outcomes[0]
    assert (o.pocket_id, o.quantity_change, o.actor_id, o.lot_number, o.reason_code) == ("BIN-1", 2, "NURSE1", "L1",
                                                                                       "return_bin")  # fmt: skip
    assert o.details["origin_pocket_id"] == "P-1"
    assert o.to_record().event_type is EventType.DOSE_RETURNED and o.to_record().event_type.moves_stock


def test_sealed_non_controlled_item_may_go_back_to_its_pocket_when_allowed() -> None:
    r = start()
    assert r.view()["destinations"] == ["return_bin", "original_pocket"]
    ok(r.choose(now=at(1), quantity=1, destination=POCKET))
    assert ok(r.deposited(now=at(2))).outcomes[0].pocket_id == "P-1"


@pytest.mark.parametrize(
    ("med", "sealed", "allow"),
    [(CEFAZOLIN, False, True), (CEFAZOLIN, True, False), (MORPHINE, True, True), (MORPHINE, False, False)],
)
def test_return_to_pocket_refused(med: object, sealed: bool, allow: bool) -> None:
    r = start(med, sealed=sealed, allow=allow)
    refused(r.choose(now=at(1), quantity=1, destination=POCKET), "workflow.return_to_pocket_refused")
    assert r.view()["destinations"] == ["return_bin"]
    refused(r.choose(now=at(1), quantity=1, destination="the floor"), "workflow.return_to_pocket_refused")  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity", [0, -1, 3, True, 1.0, "1"])
def test_quantity_guard(quantity: object) -> None:
    refused(start().choose(now=at(1), quantity=quantity), "workflow.invalid_quantity")  # type: ignore[arg-type]


def test_controlled_return_needs_a_witness_when_policy_lists_it() -> None:
    r = start(MORPHINE, policy=Policy(witnessed_actions=frozenset({WitnessedAction.CONTROLLED_RETURN})))
    assert ok(r.choose(now=at(1), quantity=1)).state is R.AWAITING_WITNESS
    refused(r.deposited(now=at(2)), "fsm.event_not_allowed")
    refused(r.witness_signed(now=at(2), signature=None), "policy.witness_required")
    sig = WitnessSignature("NURSE2", "NURSE1", RETURN_WITNESS, frozenset({"pin"}), at(2), 1)
    ok(r.witness_signed(now=at(2), signature=sig))
    assert ok(r.deposited(now=at(3))).outcomes[0].witness_id == "NURSE2"


def test_controlled_return_without_policy_needs_no_witness() -> None:
    assert ok(start(MORPHINE).choose(now=at(1), quantity=1)).state is R.READY


def test_cancel_before_deposit_only() -> None:
    r = start()
    ok(r.choose(now=at(1), quantity=1))
    d = ok(r.cancel(now=at(2)))
    assert d.state is R.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    cancelled = d.outcomes[0]
    assert (cancelled.reason_code, cancelled.actor_id, cancelled.item_id, cancelled.pocket_id) == (
        "cancelled_by_user", "NURSE1", "cefazolin", "BIN-1",
    )  # fmt: skip
    assert cancelled.details["return_id"] == "R1" and cancelled.details["pull_id"] == "PULL-1"
    assert cancelled.details["state_before"] == "ready"
    assert cancelled.to_record().event_type is EventType.WORKFLOW_CANCELLED
    r = start()
    ok(r.choose(now=at(1), quantity=1))
    ok(r.deposited(now=at(2)))
    refused(r.cancel(now=at(3)), "workflow.cancel_after_open")


def test_cancel_while_awaiting_the_witness_is_recorded() -> None:
    r = start(MORPHINE, policy=Policy(witnessed_actions=frozenset({WitnessedAction.CONTROLLED_RETURN})))
    ok(r.choose(now=at(1), quantity=1))
    d = ok(r.cancel(now=at(2)))
    assert (
        d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,) and d.outcomes[0].details["state_before"] == "awaiting_witness"
    )


# --- ending a return without its user (issue 12) -----------------------------------------------------------------


def test_abandon_with_the_original_pocket_accessed_is_an_undocumented_access() -> None:
    r = start()
    ok(r.choose(now=at(1), quantity=1, destination=POCKET))
    r.expected_on_hand = 6  # the engine notes the pocket's stock when it unlocks it
    d = ok(r.abandon(now=at(2), reason="logoff", accessed=True))
    assert d.state is R.UNDOCUMENTED and d.kinds() == (OutcomeKind.UNDOCUMENTED_ACCESS,)
    u = d.outcomes[0]
    assert (u.pocket_id, u.actor_id, u.item_id, u.patient_id, u.quantity_expected, u.reason_code) == (
        "P-1", "NURSE1", "cefazolin", "MRN-1", 6, "undocumented_access",
    )  # fmt: skip
    assert (u.details["return_id"], u.details["ended_by"], u.details["state_before"], u.details["returning"]) == (
        "R1", "logoff", "ready", 1,
    )  # fmt: skip
    assert u.to_record().event_type is EventType.DISCREPANCY_RAISED
    refused(r.deposited(now=at(3)), "fsm.event_not_allowed")


@pytest.mark.parametrize(
    ("destination", "accessed"),
    [(None, True), (None, False), (BIN, True), (BIN, False), (POCKET, False)],
    ids=["started_accessed", "started", "bin_accessed", "bin", "pocket_not_accessed"],
)
def test_abandon_otherwise_is_a_cancellation(destination: ReturnDestination | None, accessed: bool) -> None:
    r = start()
    if destination is not None:
        ok(r.choose(now=at(1), quantity=1, destination=destination))
    d = ok(r.abandon(now=at(2), reason="inactivity", accessed=accessed))
    assert d.state is R.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    o = d.outcomes[0]
    assert o.reason_code == "inactivity" and o.details["state_before"] == ("started" if destination is None
                                                                           else "ready")  # fmt: skip
    assert o.pocket_id == (None if destination is None else r.target_pocket_id)
