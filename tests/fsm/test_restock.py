"""Restock, load and unload rules: the restock privilege, a blind count-back first, only matching scans, lot and
expiry required, expired lots refused and short-dated ones warned, one outcome per lot, and the chain of custody
for controlled stock."""

from __future__ import annotations

from datetime import date

import pytest

from controller.domain.policies import Policy, WitnessedAction
from controller.domain.transactions import EventType
from controller.domain.users import Role
from controller.fsm.base import OutcomeKind, WitnessSignature
from controller.fsm.workflows.restock import (
    RESTOCK_WITNESS,
    PackageScan,
    PickLine,
    Restock,
    RestockKind,
    Restocks,
    RestockState,
    ScanVerdict,
)

from .helpers import CEFAZOLIN, MORPHINE, NURSE, TECH, at, ok, refused, user

S = RestockState
GOOD = date(2027, 1, 31)  # T0 is 2026-03-02


def line(kind: RestockKind = RestockKind.RESTOCK, med: object = CEFAZOLIN, source: str | None = None) -> PickLine:
    return PickLine(kind, med, "P-1", "D1-P1", expected_on_hand=3, quantity=5, source=source)  # type: ignore[arg-type]


def pkg(lot: str | None = "L1", expiry: date | None = GOOD, serial: str | None = None, quantity: int = 1,
        verdict: ScanVerdict = ScanVerdict.MATCH) -> PackageScan:  # fmt: skip
    return PackageScan(verdict, ndc="99999-1001-01", lot_number=lot, expiry=expiry, serial=serial, quantity=quantity)


def scanning(pick: PickLine | None = None, policy: Policy | None = None, actor: object = TECH) -> Restock:
    r = Restocks(policy).start("RS1", actor=actor, line=pick or line())  # type: ignore[arg-type]
    ok(r.begin(now=at(0)))
    assert "expected_on_hand" not in r.view()
    ok(r.count_entered(now=at(1), count=3))
    return r


def test_restock_end_to_end_one_outcome_per_lot() -> None:
    r = scanning()
    for serial, lot in (("S1", "L1"), ("S2", "L1"), ("S3", "L2")):
        assert ok(r.scanned(now=at(2), scan=pkg(lot, serial=serial))).outcomes == ()
    d = ok(r.finish(now=at(3)))
    assert d.state is S.DONE and d.kinds() == (OutcomeKind.STOCK_RESTOCKED, OutcomeKind.STOCK_RESTOCKED)
    first, second = d.outcomes
    assert (first.lot_number, first.quantity_change, first.details["serials"]) == ("L1", 2, ["S1", "S2"])
    assert (second.lot_number, second.quantity_change, first.details["expiry"]) == ("L2", 1, "2027-01-31")
    assert first.actor_id == "TECH1" and first.pocket_id == "P-1" and "custody" not in first.details
    assert first.to_record().event_type.moves_stock


@pytest.mark.parametrize(
    ("kind", "outcome", "sign"),
    [(RestockKind.LOAD, OutcomeKind.STOCK_LOADED, 1), (RestockKind.UNLOAD, OutcomeKind.STOCK_UNLOADED, -1)],
)
def test_load_and_unload(kind: RestockKind, outcome: OutcomeKind, sign: int) -> None:
    r = scanning(line(kind))
    ok(r.scanned(now=at(2), scan=pkg(quantity=4)))
    d = ok(r.finish(now=at(3)))
    assert d.kinds() == (outcome,) and d.outcomes[0].quantity_change == sign * 4


def test_unload_takes_expired_stock_out_without_refusal() -> None:
    r = scanning(line(RestockKind.UNLOAD))
    d = ok(r.scanned(now=at(2), scan=pkg(expiry=date(2025, 1, 1))))
    assert d.outcomes == ()  # not a short-dated warning either


def test_count_back_is_blind_and_a_mismatch_raises_a_discrepancy() -> None:
    r = Restocks().start("RS1", actor=TECH, line=line())
    ok(r.begin(now=at(0)))
    refused(r.scanned(now=at(1), scan=pkg()), "fsm.event_not_allowed")  # count-back first
    refused(r.count_entered(now=at(1), count=-1), "workflow.invalid_quantity")
    d = ok(r.count_entered(now=at(1), count=2))
    assert d.kinds() == (OutcomeKind.COUNT_ENTERED, OutcomeKind.DISCREPANCY_RAISED)
    assert (d.outcomes[1].quantity_expected, d.outcomes[1].quantity_actual) == (3, 2)
    assert d.state is S.SCANNING  # the restock continues


@pytest.mark.parametrize("verdict", [ScanVerdict.WRONG_ITEM, ScanVerdict.NOT_AN_NDC, ScanVerdict.UNREADABLE])
def test_anything_but_a_match_is_refused_and_recorded(verdict: ScanVerdict) -> None:
    r = scanning()
    d = refused(r.scanned(now=at(2), scan=pkg(verdict=verdict)), "inventory.item_mismatch")
    assert d.kinds() == (OutcomeKind.SCAN_REFUSED,) and d.outcomes[0].reason_code == verdict.value
    assert d.outcomes[0].to_record().event_type is EventType.INPUT_REFUSED
    assert r.packages == []


@pytest.mark.parametrize(
    ("scan", "code"),
    [
        (pkg(lot=None), "workflow.lot_required"),
        (pkg(expiry=None), "workflow.lot_required"),
        (pkg(expiry=date(2026, 3, 1)), "workflow.lot_expired"),
        (pkg(quantity=0), "workflow.invalid_quantity"),
        ("not a scan", "inventory.item_mismatch"),
    ],
)
def test_package_guards(scan: object, code: str) -> None:
    refused(scanning().scanned(now=at(2), scan=scan), code)  # type: ignore[arg-type]


def test_expired_lot_refusal_is_recorded() -> None:
    d = refused(scanning().scanned(now=at(2), scan=pkg(expiry=date(2026, 3, 1))), "workflow.lot_expired")
    assert d.kinds() == (OutcomeKind.SCAN_REFUSED,) and d.outcomes[0].reason_code == "lot_expired"


def test_expiring_today_is_accepted_and_short_dated_is_warned() -> None:
    r = scanning()
    d = ok(r.scanned(now=at(2), scan=pkg(expiry=date(2026, 3, 2))))
    assert d.kinds() == (OutcomeKind.SHORT_DATED,)
    d = ok(r.scanned(now=at(2), scan=pkg(expiry=date(2026, 4, 1))))  # 30 days
    assert d.kinds() == (OutcomeKind.SHORT_DATED,) and d.outcomes[0].details["days_left"] == 30
    assert d.outcomes[0].to_record().event_type is EventType.STOCK_SHORT_DATED
    assert ok(r.scanned(now=at(2), scan=pkg(expiry=date(2026, 4, 2)))).outcomes == ()


def test_duplicate_serial_and_empty_finish_are_refused() -> None:
    r = scanning()
    refused(r.finish(now=at(2)), "workflow.nothing_scanned")
    ok(r.scanned(now=at(2), scan=pkg(serial="S1")))
    refused(r.scanned(now=at(2), scan=pkg(serial="S1")), "workflow.duplicate_package")


@pytest.mark.parametrize(
    ("actor", "med", "code"),
    [
        (NURSE, CEFAZOLIN, "policy.privilege_missing"),
        (user("T2", Role.TECHNICIAN, active=False), CEFAZOLIN, "auth.user_inactive"),
        (user("T3", Role.TECHNICIAN, revoked_privileges=frozenset({"access_schedule_ii"})), MORPHINE,
         "policy.privilege_missing"),
        (TECH, MORPHINE, "workflow.custody_required"),
    ],
)  # fmt: skip
def test_begin_guards(actor: object, med: object, code: str) -> None:
    r = Restocks().start("RS1", actor=actor, line=line(med=med))  # type: ignore[arg-type]
    refused(r.begin(now=at(0)), code)


def test_controlled_restock_records_custody_and_witness() -> None:
    policy = Policy(witnessed_actions=frozenset({WitnessedAction.CONTROLLED_RESTOCK}))
    r = scanning(line(med=MORPHINE, source="vault:CII-1"), policy)
    ok(r.scanned(now=at(2), scan=pkg(serial="S1")))
    assert ok(r.finish(now=at(3))).state is S.AWAITING_WITNESS
    refused(r.witness_signed(now=at(4), signature=None), "policy.witness_required")
    sig = WitnessSignature("PHARM1", "TECH1", RESTOCK_WITNESS, frozenset({"pin"}), at(4), 1)
    d = ok(r.witness_signed(now=at(4), signature=sig))
    o = d.outcomes[0]
    assert o.witness_id == "PHARM1"
    assert o.details["custody"] == {"source": "vault:CII-1", "by": "TECH1", "witness": "PHARM1"}


def test_controlled_restock_without_witness_policy_still_records_custody() -> None:
    r = scanning(line(med=MORPHINE, source="vault:CII-1"))
    ok(r.scanned(now=at(2), scan=pkg()))
    d = ok(r.finish(now=at(3)))
    assert d.outcomes[0].details["custody"] == {"source": "vault:CII-1", "by": "TECH1", "witness": None}


def test_unload_of_controlled_stock_needs_no_source() -> None:
    ok(Restocks().start("RS1", actor=TECH, line=line(RestockKind.UNLOAD, MORPHINE)).begin(now=at(0)))


def test_cancel_before_done() -> None:
    r = scanning()
    ok(r.scanned(now=at(2), scan=pkg()))
    d = ok(r.cancel(now=at(3)))
    assert d.state is S.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)  # nothing is stocked
    cancelled = d.outcomes[0]
    assert (cancelled.reason_code, cancelled.actor_id, cancelled.pocket_id, cancelled.item_id) == (
        "cancelled_by_user", "TECH1", "P-1", "cefazolin",
    )  # fmt: skip
    assert cancelled.details["scanned_not_stocked"] == 1 and cancelled.details["state_before"] == "scanning"
    assert cancelled.details["restock_id"] == "RS1" and cancelled.details["restock_kind"] == "restock"
    assert cancelled.to_record().event_type is EventType.WORKFLOW_CANCELLED
    assert r.is_finished
    refused(r.finish(now=at(4)), "fsm.event_not_allowed")


# --- ending a restock without its user (issue 12) ----------------------------------------------------------------


def witnessed_pending() -> Restock:
    policy = Policy(witnessed_actions=frozenset({WitnessedAction.CONTROLLED_RESTOCK}))
    r = scanning(line(med=MORPHINE, source="vault:CII-1"), policy)
    ok(r.scanned(now=at(2), scan=pkg(serial="S1")))
    ok(r.finish(now=at(3)))
    assert r.state is S.AWAITING_WITNESS
    return r


def at_state(state: RestockState) -> Restock:
    if state is S.AWAITING_WITNESS:
        return witnessed_pending()
    r = Restocks().start("RS1", actor=TECH, line=line())
    if state is not S.STARTED:
        ok(r.begin(now=at(0)))
    if state is S.SCANNING:
        ok(r.count_entered(now=at(1), count=3))
        ok(r.scanned(now=at(2), scan=pkg(quantity=2)))
    assert r.state is state
    return r


LIVE = [S.STARTED, S.COUNT_BACK, S.SCANNING, S.AWAITING_WITNESS]


@pytest.mark.parametrize("state", LIVE, ids=lambda s: s.name)
def test_abandon_after_the_pocket_was_opened_is_an_undocumented_access(state: RestockState) -> None:
    r = at_state(state)
    scanned = len(r.packages)
    d = ok(r.abandon(now=at(9), reason="logoff", accessed=True))
    assert d.state is S.UNDOCUMENTED and d.kinds() == (OutcomeKind.UNDOCUMENTED_ACCESS,)  # nothing stocked
    u = d.outcomes[0]
    assert (u.actor_id, u.pocket_id, u.quantity_expected, u.reason_code) == ("TECH1", "P-1", 3,
                                                                            "undocumented_access")  # fmt: skip
    assert (u.details["restock_id"], u.details["ended_by"], u.details["state_before"]) == ("RS1", "logoff",
                                                                                          state.value)  # fmt: skip
    assert u.details["scanned_not_stocked"] == scanned
    assert u.to_record().event_type is EventType.DISCREPANCY_RAISED
    assert r.is_finished


@pytest.mark.parametrize("state", LIVE, ids=lambda s: s.name)
def test_abandon_without_an_access_is_a_cancellation(state: RestockState) -> None:
    r = at_state(state)
    d = ok(r.abandon(now=at(9), reason="inactivity", accessed=False))
    assert d.state is S.CANCELLED and d.kinds() == (OutcomeKind.WORKFLOW_CANCELLED,)
    o = d.outcomes[0]
    assert (o.reason_code, o.details["state_before"], o.details["scanned_not_stocked"]) == (
        "inactivity", state.value, len(r.packages),
    )  # fmt: skip
    assert r.is_finished


def test_is_finished_only_at_the_end() -> None:
    r = at_state(S.SCANNING)
    assert not r.is_finished
    ok(r.finish(now=at(3)))
    assert r.state is S.DONE and r.is_finished
    refused(r.abandon(now=at(4), reason="logoff", accessed=True), "fsm.event_not_allowed")
    assert not at_state(S.AWAITING_WITNESS).is_finished
