"""Discrepancy rules: two people resolve it with a reason code, a pharmacist who was neither of them reviews it,
it escalates at the end of the shift and stays resolvable, and the pull's blocking question is answered from
plain views."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.domain.policies import Policy
from controller.domain.transactions import EventType
from controller.domain.users import Role
from controller.fsm.base import Outcome, OutcomeKind, WitnessSignature
from controller.fsm.workflows.discrepancy import (
    COUNT_MISMATCH,
    RESOLUTION_WITNESS,
    UNDOCUMENTED_ACCESS,
    Discrepancies,
    Discrepancy,
    DiscrepancyReason,
    DiscrepancyState,
    DiscrepancyView,
    discrepancy_blocks,
)

from .helpers import NURSE, NURSE2, PHARM, T0, TECH, at, ok, refused, user

D = DiscrepancyState
DEADLINE = T0.replace(hour=19)
PHARM2 = user("PHARM2", Role.PHARMACIST)


def raise_one(policy: Policy | None = None, pool: Discrepancies | None = None, did: str = "X1") -> Discrepancy:
    pool = pool or Discrepancies(policy)
    return pool.open(
        did,
        raised_at=T0,
        pocket_id="P-1",
        item_id="morphine",
        controlled=True,
        expected=10,
        counted=9,
        raised_by="NURSE1",
    )


def sign(witness: str = "NURSE2", actor: str = "NURSE1", action: str = RESOLUTION_WITNESS) -> WitnessSignature:
    return WitnessSignature(witness, actor, action, frozenset({"pin"}), at(3), 1)


def test_open_resolved_reviewed() -> None:
    x = raise_one()
    assert x.deadline == DEADLINE and x.view().is_open
    d = ok(x.resolve(now=at(10), resolver=NURSE, signature=sign(), reason="miscount_previous", note="recounted"))
    assert d.state is D.RESOLVED and d.kinds() == (OutcomeKind.DISCREPANCY_RESOLVED,)
    o = d.outcomes[0]
    assert (o.actor_id, o.witness_id, o.reason_code, o.quantity_expected, o.quantity_actual, o.note) == (
        "NURSE1", "NURSE2", "miscount_previous", 10, 9, "recounted",
    )  # fmt: skip
    assert o.to_record().event_type is EventType.DISCREPANCY_RESOLVED
    assert not x.view().is_open
    d = ok(x.review(now=at(20), reviewer=PHARM))
    assert d.state is D.REVIEWED and d.outcomes[0].actor_id == "PHARM1"
    assert d.outcomes[0].details["resolver_id"] == "NURSE1"
    assert d.outcomes[0].details["resolution_witness_id"] == "NURSE2"
    assert d.outcomes[0].to_record().event_type is EventType.DISCREPANCY_REVIEWED


@pytest.mark.parametrize(
    ("resolver", "signature", "reason", "code"),
    [
        (TECH, sign(actor="TECH1"), "restock_error", "policy.privilege_missing"),
        (user("OLD", Role.NURSE, active=False), sign(actor="OLD"), "restock_error", "auth.user_inactive"),
        (NURSE, sign(), None, "workflow.reason_required"),
        (NURSE, sign(), "someone took it", "workflow.reason_required"),
        (NURSE, None, "restock_error", "policy.witness_required"),
        (NURSE, sign(witness="NURSE1"), "restock_error", "policy.witness_is_actor"),
        (NURSE, sign(actor="NURSE2", witness="PHARM1"), "restock_error", "policy.witness_required"),
        (NURSE, sign(action="controlled_waste"), "restock_error", "policy.witness_required"),
    ],
)
def test_resolution_guards(resolver: object, signature: WitnessSignature | None, reason: object, code: str) -> None:
    x = raise_one()
    refused(x.resolve(now=at(5), resolver=resolver, signature=signature, reason=reason), code)  # type: ignore[arg-type]
    assert x.resolver_id is None


def test_policy_without_resolution_witness_lets_one_person_resolve() -> None:
    x = raise_one(Policy(witnessed_actions=frozenset()))
    d = ok(x.resolve(now=at(5), resolver=NURSE, signature=None, reason=DiscrepancyReason.MISCOUNT_CURRENT))
    assert d.outcomes[0].witness_id is None


@pytest.mark.parametrize(
    ("reviewer", "code"),
    [
        (NURSE, "policy.privilege_missing"),  # nurses do not review
        (user("NURSE1", Role.PHARMACIST), "workflow.reviewer_conflict"),  # the resolver
        (user("NURSE2", Role.PHARMACIST), "workflow.reviewer_conflict"),  # the witness
        (user("GONE", Role.PHARMACIST, active=False), "auth.user_inactive"),
    ],
)
def test_review_guards(reviewer: object, code: str) -> None:
    x = raise_one()
    ok(x.resolve(now=at(5), resolver=NURSE, signature=sign(), reason="restock_error"))
    refused(x.review(now=at(6), reviewer=reviewer), code)  # type: ignore[arg-type]


def test_pharmacist_who_resolved_cannot_also_review() -> None:
    x = raise_one()
    ok(x.resolve(now=at(5), resolver=PHARM, signature=sign(actor="PHARM1"), reason="restock_error"))
    refused(x.review(now=at(6), reviewer=PHARM), "workflow.reviewer_conflict")
    ok(x.review(now=at(6), reviewer=PHARM2))


def test_review_before_resolution_is_refused_with_its_own_code() -> None:
    x = raise_one()
    refused(x.review(now=at(5), reviewer=PHARM), "workflow.not_resolved")


def test_unresolved_at_deadline_escalates_once_and_stays_resolvable() -> None:
    pool = Discrepancies()
    x = raise_one(pool=pool)
    assert ok(x.tick(now=DEADLINE - timedelta(seconds=1))).outcomes == ()
    [d] = pool.tick(now=DEADLINE)
    assert d.state is D.ESCALATED and d.kinds() == (OutcomeKind.DISCREPANCY_ESCALATED,)
    assert d.outcomes[0].to_record().event_type is EventType.DISCREPANCY_ESCALATED
    assert ok(x.tick(now=DEADLINE + timedelta(hours=1))).outcomes == ()
    assert pool.blocks(user_id="NURSE1", pocket_id="P-1")
    d = ok(x.resolve(now=DEADLINE + timedelta(hours=2), resolver=NURSE2, signature=sign("NURSE1", "NURSE2"),
                     reason="unresolved_unknown"))  # fmt: skip
    assert d.outcomes[0].details["late"] is True
    ok(x.review(now=DEADLINE + timedelta(hours=3), reviewer=PHARM))
    assert pool.tick(now=DEADLINE + timedelta(days=1)) == []


def test_open_from_a_raised_outcome_records_nothing_again() -> None:
    raised = Outcome(
        OutcomeKind.DISCREPANCY_RAISED,
        at(1),
        actor_id="NURSE1",
        item_id="morphine",
        pocket_id="P-1",
        quantity_expected=10,
        quantity_actual=8,
        reason_code="blind_count_mismatch",
    )
    x = Discrepancies().open_from("X1", raised, controlled=True)
    assert (x.expected, x.counted, x.raised_by, x.source, x.state) == (10, 8, "NURSE1", "blind_count_mismatch", D.OPEN)
    with pytest.raises(ValueError, match="does not raise"):
        Discrepancies().open_from("X2", Outcome(OutcomeKind.COUNT_ENTERED, at(1)), controlled=True)
    with pytest.raises(ValueError, match="names its pocket"):
        Discrepancies().open_from("X3", Outcome(OutcomeKind.DISCREPANCY_RAISED, at(1)), controlled=True)


def _view(state: D = D.OPEN, controlled: bool = True, pocket: str = "P-1", **kw: object) -> DiscrepancyView:
    values: dict[str, object] = {
        "discrepancy_id": "X", "pocket_id": pocket, "item_id": "morphine", "controlled": controlled,
        "state": state, "raised_by": "NURSE1",
    }  # fmt: skip
    values.update(kw)
    return DiscrepancyView(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("views", "user_id", "blocks"),
    [
        ([], "NURSE1", False),
        ([_view()], "NURSE1", True),
        ([_view(D.ESCALATED)], "NURSE1", True),
        ([_view(D.RESOLVED)], "NURSE1", False),
        ([_view(D.REVIEWED)], "NURSE1", False),
        ([_view(controlled=False)], "NURSE1", False),
        ([_view(pocket="P-2")], "NURSE1", False),
        ([_view()], "NURSE2", False),
        ([_view(involved=frozenset({"NURSE2"}))], "NURSE2", True),
        ([_view(D.REVIEWED), _view()], "NURSE1", True),
    ],
)
def test_discrepancy_blocks(views: list[DiscrepancyView], user_id: str, blocks: bool) -> None:
    assert discrepancy_blocks(views, user_id=user_id, pocket_id="P-1") is blocks


def test_duplicate_id_is_a_bug() -> None:
    pool = Discrepancies()
    raise_one(pool=pool)
    with pytest.raises(ValueError, match="already exists"):
        raise_one(pool=pool)


# --- undocumented access (issue 12) ------------------------------------------------------------------------------


def undocumented(policy: Policy | None = None, *, controlled: bool = True) -> Discrepancy:
    pool = Discrepancies(policy)
    x = Discrepancy("U1", raised_at=T0, pocket_id="P-1", item_id="morphine", controlled=controlled, expected=10,
                    counted=None, raised_by="NURSE1", policy=pool.policy, kind=UNDOCUMENTED_ACCESS,
                    workflow_id="PULL-1")  # fmt: skip
    return pool.adopt("U1", x)


def test_kind_defaults_to_a_count_mismatch() -> None:
    x = raise_one()
    assert x.kind == COUNT_MISMATCH
    d = ok(x.resolve(now=at(5), resolver=NURSE, signature=sign(), reason="miscount_current"))  # no count needed
    assert d.outcomes[0].details["discrepancy_kind"] == "count_mismatch"
    assert d.outcomes[0].details["counted_seq"] is None


def test_an_undocumented_access_is_resolved_only_after_a_count() -> None:
    x = undocumented()
    assert x.counted is None and x.view().is_open
    d = refused(x.resolve(now=at(5), resolver=NURSE, signature=sign(), reason="undocumented_removal"),
                "workflow.count_required")  # fmt: skip
    assert d.refusal is not None and d.refusal.context["pocket"] == "P-1"
    assert x.resolver_id is None
    d = ok(x.resolve(now=at(6), resolver=NURSE, signature=sign(), reason="undocumented_removal", counted_seq=88))
    assert d.state is D.RESOLVED
    o = d.outcomes[0]
    assert (o.actor_id, o.witness_id, o.quantity_expected, o.quantity_actual) == ("NURSE1", "NURSE2", 10, None)
    assert o.details["counted_seq"] == 88 and o.details["discrepancy_kind"] == "undocumented_access"
    ok(x.review(now=at(7), reviewer=PHARM))


def test_a_controlled_undocumented_access_always_needs_a_witness() -> None:
    x = undocumented(Policy(witnessed_actions=frozenset()))
    assert x.witness_required is True
    refused(x.resolve(now=at(5), resolver=NURSE, signature=None, reason="miscount_previous", counted_seq=3),
            "policy.witness_required")  # fmt: skip
    refused(x.resolve(now=at(5), resolver=NURSE, signature=sign(witness="NURSE1"), reason="miscount_previous",
                      counted_seq=3), "policy.witness_is_actor")  # fmt: skip
    ok(x.resolve(now=at(5), resolver=NURSE, signature=sign(), reason="miscount_previous", counted_seq=3))


def test_a_non_controlled_undocumented_access_follows_the_policy() -> None:
    assert raise_one(Policy(witnessed_actions=frozenset())).witness_required is False
    x = undocumented(Policy(witnessed_actions=frozenset()), controlled=False)
    assert x.witness_required is False
    refused(x.resolve(now=at(5), resolver=NURSE, signature=None, reason="miscount_previous"),
            "workflow.count_required")  # fmt: skip
    d = ok(x.resolve(now=at(5), resolver=NURSE, signature=None, reason="miscount_previous", counted_seq=3))
    assert d.outcomes[0].witness_id is None
    assert undocumented(controlled=False).witness_required is True  # the default policy lists the resolution


def test_an_undocumented_access_escalates_like_any_other() -> None:
    x = undocumented()
    d = ok(x.tick(now=DEADLINE))
    assert d.state is D.ESCALATED and d.outcomes[0].quantity_actual is None
    assert d.outcomes[0].details["discrepancy_kind"] == "undocumented_access"
    refused(x.resolve(now=DEADLINE, resolver=NURSE, signature=sign(), reason="unresolved_unknown"),
            "workflow.count_required")  # fmt: skip
