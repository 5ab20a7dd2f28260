"""Compartment rules: the happy path, unlock only by grant, jam and fault, left-open on given times, tamper on an
unexpected open, and restore from sensors with an open drawer blocking every other unlock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.fsm.base import OutcomeKind
from controller.fsm.compartment import (
    Compartment,
    Compartments,
    CompartmentState,
    SensorReading,
    UnlockFailure,
    UnlockGrant,
)
from controller.fsm.session import Session, Sessions
from controller.fsm.settings import FsmSettings

from .helpers import NURSE, NURSE2, PHARM, T0, TECH, at, logged_in, ok, pin, refused

C = CompartmentState
CLOSED_LATCHED = SensorReading(door_open=False, latched=True)


def cabinet(
    *ids: str, settings: FsmSettings | None = None, sensors: SensorReading = CLOSED_LATCHED
) -> tuple[Compartments, Session]:
    pool = Compartments(settings)
    for cid in ids or ("D1",):
        ok(pool.add(cid).restore(now=T0, sensors=sensors))
    return pool, logged_in(Sessions().new("CAB"))


def grant(session: Session, cid: str = "D1") -> UnlockGrant:
    assert session.active_user_id is not None
    return UnlockGrant(session.session_id, session.active_user_id, cid, "pull")


def opened_drawer() -> tuple[Compartment, Session]:
    pool, s = cabinet()
    c = pool["D1"]
    ok(c.unlock_requested(now=at(1), session=s, grant=grant(s)))
    ok(c.unlock_confirmed(now=at(2)))
    d = ok(c.opened(now=at(3), session=s))
    assert d.kinds() == (OutcomeKind.DRAWER_OPENED,) and d.outcomes[0].actor_id == "NURSE1"
    return c, s


def test_happy_path() -> None:
    c, _ = opened_drawer()
    assert ok(c.closed(now=at(10))).kinds() == (OutcomeKind.DRAWER_CLOSED,)
    assert ok(c.latched(now=at(11))).state is C.LOCKED
    assert c.grant is None


@pytest.mark.parametrize(
    ("make_grant", "code"),
    [
        (lambda s: None, "compartment.not_authorised"),
        (lambda s: UnlockGrant(s.session_id, s.active_user_id, "D2", "pull"), "compartment.not_authorised"),
        (lambda s: UnlockGrant(s.session_id + 1, s.active_user_id, "D1", "pull"), "compartment.not_authorised"),
        (lambda s: UnlockGrant(s.session_id, "NURSE2", "D1", "pull"), "compartment.not_authorised"),
    ],
)
def test_unlock_needs_a_grant_for_this_compartment_and_session(make_grant: object, code: str) -> None:
    pool, s = cabinet()
    refused(pool["D1"].unlock_requested(now=at(1), session=s, grant=make_grant(s)), code)  # type: ignore[operator]


def test_unlock_refused_without_an_active_session() -> None:
    pool, s = cabinet()
    g = grant(s)
    ok(s.logout(now=at(1)))
    refused(pool["D1"].unlock_requested(now=at(2), session=s, grant=g), "session.not_active")


@pytest.mark.parametrize(("cause", "state"), [(UnlockFailure.JAMMED, C.JAMMED), (UnlockFailure.LOCK_FAULT, C.FAULT),
                                              (UnlockFailure.NO_RESPONSE, C.FAULT)])  # fmt: skip
def test_unlock_failure_by_cause(cause: UnlockFailure, state: CompartmentState) -> None:
    pool, s = cabinet()
    c = pool["D1"]
    ok(c.unlock_requested(now=at(1), session=s, grant=grant(s)))
    d = ok(c.unlock_failed(now=at(2), cause=cause))
    assert d.state is state and d.outcomes[0].reason_code == cause.value
    refused(c.service_reset(now=at(3), user=NURSE), "policy.privilege_missing")
    ok(c.service_reset(now=at(3), user=TECH))
    assert ok(c.latched(now=at(4))).state is C.LOCKED


def test_unlocked_but_never_opened_relocks() -> None:
    pool, s = cabinet()
    c = pool["D1"]
    ok(c.unlock_requested(now=at(1), session=s, grant=grant(s)))
    ok(c.unlock_confirmed(now=at(2)))
    assert ok(c.latched(now=at(12))).state is C.LOCKED


@pytest.mark.parametrize(
    ("seconds_open", "alarm"),
    [(0, False), (29.9, False), (30, True), (300, True)],
)
def test_left_open_alarm_on_given_times(seconds_open: float, alarm: bool) -> None:
    c, _ = opened_drawer()
    d = ok(c.tick(now=at(3 + seconds_open)))
    assert (OutcomeKind.LEFT_OPEN in d.kinds()) is alarm


def test_left_open_alarm_is_raised_once_per_opening_and_limit_is_configurable() -> None:
    pool, s = cabinet(settings=FsmSettings(left_open_limit=timedelta(seconds=90)))
    c = pool["D1"]
    ok(c.unlock_requested(now=at(1), session=s, grant=grant(s)))
    ok(c.opened(now=at(2), session=s))  # the door can open before the confirmation arrives
    assert ok(c.tick(now=at(91))).kinds() == ()
    assert ok(c.tick(now=at(92))).kinds() == (OutcomeKind.LEFT_OPEN,)
    assert ok(c.tick(now=at(200))).kinds() == ()


@pytest.mark.parametrize("state", [C.LOCKED, C.CLOSED, C.JAMMED, C.FAULT])
def test_opening_without_unlock_is_tamper(state: CompartmentState) -> None:
    pool, s = cabinet()
    c = pool["D1"]
    pool.machine.set_state(state, c)
    d = ok(c.opened(now=at(1), session=s))
    assert d.state is C.BREACHED and d.kinds() == (OutcomeKind.TAMPER,)
    assert d.outcomes[0].to_record().event_type.value == "drawer.tamper"


def test_opening_for_another_user_is_tamper() -> None:
    pool, s = cabinet()
    c = pool["D1"]
    ok(c.unlock_requested(now=at(1), session=s, grant=grant(s)))
    ok(c.unlock_confirmed(now=at(2)))
    ok(s.logout(now=at(3)))
    ok(s.login(now=at(4), credentials=pin(NURSE2)))
    d = ok(c.opened(now=at(5), session=s))
    assert d.state is C.BREACHED
    assert d.outcomes[0].actor_id == "NURSE2" and d.outcomes[0].details["granted_to"] == "NURSE1"


def test_restore_with_an_open_drawer_blocks_everything_until_accounted_for() -> None:
    pool = Compartments()
    d1, d2 = pool.add("D1"), pool.add("D2")
    s = logged_in(Sessions().new("CAB"))
    # before restore nothing may unlock
    refused(d2.unlock_requested(now=T0, session=s, grant=grant(s, "D2")), "compartment.unaccounted")
    d = ok(d1.restore(now=T0, sensors=SensorReading(door_open=True, latched=False)))
    assert d.state is C.BREACHED and d.kinds() == (OutcomeKind.FOUND_OPEN,)
    ok(d2.restore(now=T0, sensors=CLOSED_LATCHED))
    refused(d2.unlock_requested(now=at(1), session=s, grant=grant(s, "D2")), "compartment.unaccounted")
    refused(d1.unlock_requested(now=at(1), session=s, grant=grant(s, "D1")), "compartment.unaccounted")
    assert ok(d1.closed(now=at(2))).state is C.UNACCOUNTED
    refused(d2.unlock_requested(now=at(3), session=s, grant=grant(s, "D2")), "compartment.unaccounted")
    refused(d1.accounted_for(now=at(4), user=NURSE, counted=7), "policy.privilege_missing")
    d = ok(d1.accounted_for(now=at(4), user=PHARM, counted=7))
    assert d.outcomes[0].quantity_actual == 7
    ok(d1.latched(now=at(5)))
    ok(d2.unlock_requested(now=at(6), session=s, grant=grant(s, "D2")))


def test_restore_closed_but_unlatched() -> None:
    pool = Compartments()
    c = pool.add("D1")
    assert ok(c.restore(now=T0, sensors=SensorReading(door_open=False, latched=False))).state is C.CLOSED


def test_blocking_can_be_switched_off() -> None:
    pool, s = cabinet("D1", "D2", settings=FsmSettings(block_unlocks_while_unaccounted=False))
    pool.machine.set_state(C.BREACHED, pool["D1"])
    ok(pool["D2"].unlock_requested(now=at(1), session=s, grant=grant(s, "D2")))
