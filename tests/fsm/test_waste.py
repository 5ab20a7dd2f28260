"""Waste rules: amount and unit against the dose removed, reason codes, the licensed witness for controlled items,
the pending-waste list that a cancelled witness step can never empty, escalation at the end of the shift, and the
recorded outcome naming actor, witness, amount, unit and reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from controller.domain.policies import Policy, WitnessedAction
from controller.domain.transactions import EventType
from controller.fsm.base import Decision, OutcomeKind, WitnessSignature
from controller.fsm.session import Sessions
from controller.fsm.workflows.waste import RemovedDose, Waste, WasteReason, Wastes, WasteState, pending_wastes

from .helpers import CEFAZOLIN, MORPHINE, NURSE, NURSE2, T0, TECH, at, logged_in, ok, pin, refused

W = WasteState
DUE = T0.replace(hour=19)  # default shifts start 07:00 and 19:00 UTC


def dose(med: object = MORPHINE, amount: str = "4", unit: str = "mg") -> RemovedDose:
    return RemovedDose(
        medication=med,  # type: ignore[arg-type]
        amount=Decimal(amount),
        unit=unit,
        pocket_id="P-1",
        pull_id="PULL-1",
        patient_id="MRN-1",
        order_id="O1",
        lot_number="L1",
    )


def start(med: object = MORPHINE, policy: Policy | None = None, waste_id: str = "W1") -> Waste:
    return Wastes(policy).start(waste_id, actor_id="NURSE1", dose=dose(med), now=T0)


def sign(action: str = "controlled_waste", witness: str = "NURSE2", actor: str = "NURSE1") -> WitnessSignature:
    return WitnessSignature(witness, actor, action, frozenset({"pin"}), at(3), 1)


def enter(
    w: Waste,
    amount: object = Decimal(2),
    unit: str = "mg",
    reason: object = WasteReason.PARTIAL_DOSE,
    *,
    user_id: str = "NURSE1",
    seconds: float = 1,
) -> Decision:
    return w.enter(now=at(seconds), user_id=user_id, amount=amount, unit=unit, reason=reason)  # type: ignore[arg-type]


def test_controlled_partial_waste_with_witness_records_everything() -> None:
    w = start()
    assert w.due == DUE
    d = ok(w.enter(now=at(1), user_id="NURSE1", amount=Decimal(2), unit="MG", reason="partial_dose", note=" half "))
    assert d.state is W.AWAITING_WITNESS and d.outcomes == ()
    d = ok(w.witness_signed(now=at(3), signature=sign()))
    assert d.state is W.RECORDED and d.kinds() == (OutcomeKind.WASTE_RECORDED,)
    o = d.outcomes[0]
    assert (o.actor_id, o.witness_id, o.item_id, o.pocket_id, o.patient_id, o.reason_code, o.note) == (
        "NURSE1", "NURSE2", "morphine", "P-1", "MRN-1", "partial_dose", "half",
    )  # fmt: skip
    assert o.details["amount"] == "2" and o.details["unit"] == "mg" and o.details["partial"] is True
    record = o.to_record()
    assert record.event_type is EventType.WASTE_RECORDED and not record.event_type.moves_stock
    assert record.note == "half" and record.witness_id == "NURSE2"
    assert not w.is_pending


def test_non_controlled_waste_needs_no_witness() -> None:
    w = start(CEFAZOLIN)
    d = ok(w.enter(now=at(1), user_id="NURSE1", amount=4, unit="mg", reason=WasteReason.PATIENT_REFUSED))
    assert d.state is W.RECORDED and d.outcomes[0].witness_id is None
    assert d.outcomes[0].details["partial"] is False


def test_any_waste_policy_witnesses_every_item() -> None:
    w = start(CEFAZOLIN, Policy(witnessed_actions=frozenset({WitnessedAction.ANY_WASTE})))
    assert ok(w.enter(now=at(1), user_id="NURSE1", amount=1, unit="mg", reason="contaminated")).state is (
        W.AWAITING_WITNESS
    )
    refused(w.witness_signed(now=at(2), signature=sign("controlled_waste")), "policy.witness_required")
    assert ok(w.witness_signed(now=at(2), signature=sign("any_waste"))).state is W.RECORDED


def test_policy_without_waste_witness_records_controlled_waste_alone() -> None:
    w = start(MORPHINE, Policy(witnessed_actions=frozenset()))
    assert ok(w.enter(now=at(1), user_id="NURSE1", amount=1, unit="mg", reason="partial_dose")).state is W.RECORDED


@pytest.mark.parametrize(
    ("amount", "unit", "reason", "code"),
    [
        (Decimal(0), "mg", "partial_dose", "workflow.invalid_quantity"),
        (Decimal(-1), "mg", "partial_dose", "workflow.invalid_quantity"),
        (Decimal("4.01"), "mg", "partial_dose", "workflow.invalid_quantity"),
        (Decimal("NaN"), "mg", "partial_dose", "workflow.invalid_quantity"),
        (True, "mg", "partial_dose", "workflow.invalid_quantity"),
        ("2", "mg", "partial_dose", "workflow.invalid_quantity"),
        (2.0, "mg", "partial_dose", "workflow.invalid_quantity"),
        (Decimal(2), "mL", "partial_dose", "workflow.unit_mismatch"),
        (Decimal(2), "", "partial_dose", "workflow.unit_mismatch"),
        (Decimal(2), "mg", None, "workflow.reason_required"),
        (Decimal(2), "mg", "", "workflow.reason_required"),
        (Decimal(2), "mg", "because I said so", "workflow.reason_required"),
    ],
)
def test_entry_guards(amount: object, unit: str, reason: object, code: str) -> None:
    w = start()
    refused(enter(w, amount, unit, reason), code)
    assert w.amount is None


def test_whole_dose_may_be_wasted() -> None:
    w = start()
    assert ok(enter(w, Decimal(4))).state is W.AWAITING_WITNESS


def test_only_the_user_who_removed_it_records_the_waste() -> None:
    w = start()
    refused(enter(w, user_id="NURSE2"), "workflow.not_owner")
    refused(w.defer(now=at(1), user_id="NURSE2"), "workflow.not_owner")


def test_witness_signature_must_be_for_this_actor_and_not_their_own() -> None:
    w = start()
    ok(enter(w))
    refused(w.witness_signed(now=at(2), signature=None), "policy.witness_required")
    refused(w.witness_signed(now=at(2), signature=sign(witness="NURSE1")), "policy.witness_is_actor")
    refused(w.witness_signed(now=at(2), signature=sign(actor="NURSE3")), "policy.witness_required")
    refused(w.witness_signed(now=at(2), signature=sign("controlled_removal")), "policy.witness_required")


def test_cancelling_the_witness_keeps_the_waste_pending_with_an_entry() -> None:
    w = start()
    ok(enter(w))
    d = ok(w.witness_cancelled(now=at(5)))
    assert d.state is W.PENDING and d.kinds() == (OutcomeKind.WASTE_PENDING,)
    assert d.outcomes[0].reason_code == "witness_cancelled"
    assert d.outcomes[0].to_record().event_type is EventType.WASTE_PENDING
    assert d.outcomes[0].details["amount"] == "2"
    assert w.is_pending
    # later, from the pending-waste list: enter again and sign
    ok(enter(w, Decimal(3), seconds=600))
    d = ok(w.witness_signed(now=at(601), signature=sign()))
    assert d.state is W.RECORDED and d.outcomes[0].details["amount"] == "3"
    assert d.outcomes[0].details["late"] is False


def test_defer_puts_it_on_the_pending_list_and_it_escalates_at_end_of_shift() -> None:
    pool = Wastes()
    w = pool.start("W1", actor_id="NURSE1", dose=dose(), now=T0)
    other = pool.start("W2", actor_id="NURSE2", dose=dose(), now=T0)
    d = ok(w.defer(now=at(1), user_id="NURSE1"))
    assert d.state is W.PENDING and d.outcomes[0].reason_code == "deferred"
    assert pool.pending_for("NURSE1") == [w] and pending_wastes(pool.by_id.values(), "NURSE2") == [other]
    assert ok(w.tick(now=DUE - timedelta(seconds=1))).outcomes == ()
    d = ok(w.tick(now=DUE))
    assert d.state is W.ESCALATED and d.kinds() == (OutcomeKind.WASTE_OVERDUE,)
    assert d.outcomes[0].to_record().event_type is EventType.WASTE_OVERDUE
    assert ok(w.tick(now=DUE + timedelta(hours=1))).outcomes == ()  # escalated once
    assert pool.pending_for("NURSE1") == [w]
    # still recordable, flagged late
    ok(enter(w, seconds=12 * 3600))
    d = ok(w.witness_signed(now=DUE + timedelta(hours=2), signature=sign()))
    assert d.state is W.RECORDED and d.outcomes[0].details["late"] is True
    assert pool.pending_for("NURSE1") == []


def test_pool_tick_escalates_every_open_waste_once() -> None:
    pool = Wastes()
    a = pool.start("W1", actor_id="NURSE1", dose=dose(), now=T0)
    pool.start("W2", actor_id="NURSE1", dose=dose(CEFAZOLIN), now=T0)
    ok(a.enter(now=at(1), user_id="NURSE1", amount=1, unit="mg", reason="partial_dose"))  # awaiting witness
    decisions = pool.tick(now=DUE)
    assert [d.state for d in decisions] == [W.AWAITING_WITNESS, W.ESCALATED]
    d = ok(a.witness_cancelled(now=DUE + timedelta(minutes=1)))  # past due: escalates now
    assert d.state is W.ESCALATED and d.kinds() == (OutcomeKind.WASTE_PENDING, OutcomeKind.WASTE_OVERDUE)
    d = ok(a.enter(now=DUE + timedelta(minutes=2), user_id="NURSE1", amount=1, unit="mg", reason="partial_dose"))
    assert ok(a.witness_cancelled(now=DUE + timedelta(minutes=3))).kinds() == (OutcomeKind.WASTE_PENDING,)


def test_recorded_waste_accepts_nothing_more() -> None:
    w = start(CEFAZOLIN)
    ok(enter(w))
    refused(enter(w), "fsm.event_not_allowed")
    refused(w.defer(now=at(2), user_id="NURSE1"), "fsm.event_not_allowed")
    assert ok(w.tick(now=DUE)).outcomes == ()


def test_with_a_real_session_a_technician_cannot_witness_waste() -> None:
    w = start()
    s = logged_in(Sessions().new("CAB"), NURSE)
    ok(enter(w))
    ok(s.witness_begin(now=at(2), action=w.witness_action))
    refused(s.witness_sign(now=at(3), credentials=pin(TECH)), "policy.witness_lacks_privilege")
    d = ok(s.witness_sign(now=at(4), credentials=pin(NURSE2)))
    assert d.signature is not None
    d = ok(w.witness_signed(now=at(5), signature=d.signature))
    assert d.outcomes[0].witness_id == "NURSE2"


def test_view_lists_reason_codes_and_due_time() -> None:
    view = start().view()
    assert view["due"] == DUE.isoformat() and "partial_dose" in view["reasons"] and view["witness_required"]


def test_duplicate_waste_id_is_a_bug() -> None:
    pool = Wastes()
    pool.start("W1", actor_id="NURSE1", dose=dose(), now=T0)
    with pytest.raises(ValueError, match="already exists"):
        pool.start("W1", actor_id="NURSE1", dose=dose(), now=T0)
