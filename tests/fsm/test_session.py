"""Session rules: factors recorded, one user per cabinet, lockout and its expiry, inactivity on given times,
unusable accounts, and the witness sign-off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.domain.policies import WitnessedAction
from controller.domain.users import Role
from controller.fsm.base import OutcomeKind
from controller.fsm.session import Credentials, Factor, Session, Sessions, SessionState
from controller.fsm.settings import FsmSettings

from .helpers import ADMIN, NURSE, NURSE2, T0, TECH, at, logged_in, ok, pin, refused, user, wrong_pin

S = SessionState


def new(settings: FsmSettings | None = None) -> Session:
    return Sessions().new("CAB-4W", settings=settings)


def test_login_records_the_factors_used() -> None:
    s = new()
    creds = Credentials("NURSE1", NURSE, verified=frozenset({Factor.BADGE, Factor.BIOMETRIC}))
    d = ok(s.login(now=T0, credentials=creds))
    assert d.state is S.AUTHENTICATED and d.kinds() == (OutcomeKind.LOGIN,)
    assert d.outcomes[0].details["factors"] == ["badge", "biometric"]
    assert d.outcomes[0].to_record().actor_id == "NURSE1"
    assert s.active_user_id == "NURSE1"


def test_second_user_is_refused_until_the_first_logs_out() -> None:
    s = logged_in(new())
    refused(s.login(now=at(1), credentials=pin(NURSE2)), "session.cabinet_in_use")
    ok(s.logout(now=at(2)))
    ok(s.login(now=at(3), credentials=pin(NURSE2)))
    assert s.active_user_id == "NURSE2"


@pytest.mark.parametrize(
    ("settings", "factors", "code"),
    [
        (FsmSettings(), frozenset(), "session.factors_insufficient"),
        (FsmSettings(min_login_factors=2), frozenset({Factor.PIN}), "session.factors_insufficient"),
    ],
)
def test_not_enough_factors(settings: FsmSettings, factors: frozenset[Factor], code: str) -> None:
    d = refused(new(settings).login(now=T0, credentials=Credentials("NURSE1", NURSE, factors)), code)
    assert d.kinds() == (OutcomeKind.LOGIN_FAILED,)


def test_two_factors_when_configured() -> None:
    creds = Credentials("NURSE1", NURSE, frozenset({Factor.PIN, Factor.BADGE}))
    ok(new(FsmSettings(min_login_factors=2)).login(now=T0, credentials=creds))


def test_unknown_user_is_a_failed_login_entry() -> None:
    d = refused(new().login(now=T0, credentials=pin(None, "GHOST")), "auth.bad_credentials")
    assert d.outcomes[0].kind is OutcomeKind.LOGIN_FAILED and d.outcomes[0].actor_id == "GHOST"


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (user("AGENCY1", Role.NURSE, expires_at=T0 - timedelta(seconds=1)), "auth.user_expired"),
        (user("GONE", Role.NURSE, active=False), "auth.user_inactive"),
    ],
)
def test_unusable_accounts_are_refused(account: object, code: str) -> None:
    d = refused(new().login(now=T0, credentials=pin(account)), code)  # type: ignore[arg-type]
    assert d.kinds() == (OutcomeKind.LOGIN_FAILED,)


def test_lockout_after_five_failures_with_an_entry_each_then_it_expires() -> None:
    s = new()
    for i in range(4):
        d = refused(s.login(now=at(i), credentials=wrong_pin(NURSE)), "auth.bad_credentials")
        assert d.kinds() == (OutcomeKind.LOGIN_FAILED,)
        assert d.outcomes[0].details["failures"] == i + 1
    d = refused(s.login(now=at(4), credentials=wrong_pin(NURSE)), "auth.bad_credentials")
    assert d.kinds() == (OutcomeKind.LOGIN_FAILED, OutcomeKind.LOCKED_OUT)
    assert d.outcomes[1].details["until"] == (at(4) + timedelta(minutes=15)).isoformat()
    # the right PIN does not help while locked out, and another user is unaffected
    refused(s.login(now=at(5), credentials=pin(NURSE)), "session.locked_out")
    ok(s.login(now=at(6), credentials=pin(NURSE2)))
    ok(s.logout(now=at(7)))
    refused(s.login(now=at(4) + timedelta(minutes=15) - timedelta(seconds=1), credentials=pin(NURSE)),
            "session.locked_out")  # fmt: skip
    ok(s.login(now=at(4) + timedelta(minutes=15), credentials=pin(NURSE)))
    assert s.lockout_of("NURSE1").failures == 0


def test_lockout_that_needs_an_administrator() -> None:
    s = new(FsmSettings(max_failed_logins=2, lockout_duration=None))
    s.login(now=T0, credentials=wrong_pin(NURSE))
    d = s.login(now=T0, credentials=wrong_pin(NURSE))
    assert d.outcomes[-1].details["needs_admin"] is True
    refused(s.login(now=T0 + timedelta(days=30), credentials=pin(NURSE)), "session.locked_out")
    refused(s.clear_lockout(now=at(1), admin=NURSE2, user_id="NURSE1"), "policy.privilege_missing")
    d = ok(s.clear_lockout(now=at(1), admin=ADMIN, user_id="NURSE1"))
    assert d.kinds() == (OutcomeKind.LOCKOUT_CLEARED,)
    ok(s.login(now=at(2), credentials=pin(NURSE)))


@pytest.mark.parametrize(
    ("idle_seconds", "state"),
    [(0, S.AUTHENTICATED), (49.9, S.AUTHENTICATED), (50, S.WARNED), (59.9, S.WARNED), (60, S.LOGGED_OUT)],
)
def test_inactivity_on_given_times(idle_seconds: float, state: SessionState) -> None:
    s = logged_in(new())
    d = ok(s.tick(now=at(idle_seconds)))
    assert d.state is state


def test_warning_then_activity_then_logout_with_reason() -> None:
    s = logged_in(new())
    assert ok(s.tick(now=at(55))).state is S.WARNED
    assert ok(s.activity(now=at(56))).state is S.AUTHENTICATED
    assert ok(s.tick(now=at(105))).state is S.AUTHENTICATED  # 49 s after the activity
    assert ok(s.tick(now=at(106))).state is S.WARNED
    d = ok(s.tick(now=at(116)))
    assert d.state is S.LOGGED_OUT
    assert d.outcomes[0].kind is OutcomeKind.LOGOUT and d.outcomes[0].reason_code == "inactivity"


def test_configured_timeout() -> None:
    s = logged_in(new(FsmSettings(inactivity_warning=timedelta(seconds=100), inactivity_logout=timedelta(minutes=3))))
    assert ok(s.tick(now=at(99))).state is S.AUTHENTICATED
    assert ok(s.tick(now=at(179))).state is S.WARNED
    assert ok(s.tick(now=at(180))).state is S.LOGGED_OUT


def test_temporary_user_expires_mid_session() -> None:
    agency = user("AGENCY1", Role.NURSE, expires_at=at(30))
    s = logged_in(new(), agency)
    ok(s.activity(now=at(29)))
    d = ok(s.tick(now=at(30)))
    assert d.state is S.LOGGED_OUT and d.outcomes[0].reason_code == "account_expired"


# --- witness ---------------------------------------------------------------------------------------------------


def witnessing(action: str = WitnessedAction.CONTROLLED_WASTE.value) -> Session:
    s = logged_in(new())
    ok(s.witness_begin(now=at(1), action=action))
    return s


def test_witness_signs_and_the_signature_names_both() -> None:
    s = witnessing()
    d = ok(s.witness_sign(now=at(2), credentials=pin(NURSE2)))
    assert d.state is S.AUTHENTICATED and d.signature is not None
    assert (d.signature.witness_id, d.signature.actor_id, d.signature.action) == (
        "NURSE2",
        "NURSE1",
        "controlled_waste",
    )
    assert s.active_user_id == "NURSE1"  # the witness never becomes the session's user


@pytest.mark.parametrize(
    ("witness_creds", "action", "code"),
    [
        (pin(NURSE), "controlled_waste", "policy.witness_is_actor"),
        (pin(user("QA1", Role.QA)), "controlled_waste", "policy.witness_lacks_privilege"),
        (pin(TECH), "controlled_waste", "policy.witness_lacks_privilege"),  # waste needs a licensed witness
        (pin(user("OLD", Role.NURSE, active=False)), "controlled_waste", "auth.user_inactive"),
        (wrong_pin(NURSE2), "controlled_waste", "auth.bad_credentials"),
    ],
)
def test_witness_refusals(witness_creds: Credentials, action: str, code: str) -> None:
    s = witnessing(action)
    d = refused(s.witness_sign(now=at(2), credentials=witness_creds), code)
    assert d.signature is None and s.state is S.WITNESSING


def test_technician_may_witness_a_restock() -> None:
    s = witnessing(WitnessedAction.CONTROLLED_RESTOCK.value)
    ok(s.witness_sign(now=at(2), credentials=pin(TECH)))


def test_failed_witness_attempts_count_towards_the_witness_lockout() -> None:
    s = witnessing()
    for i in range(5):
        d = s.witness_sign(now=at(2 + i), credentials=wrong_pin(NURSE2))
        assert d.outcomes[0].kind is OutcomeKind.WITNESS_FAILED
    assert d.outcomes[-1].kind is OutcomeKind.LOCKED_OUT
    refused(s.witness_sign(now=at(10), credentials=pin(NURSE2)), "session.locked_out")


def test_witness_cancel_returns_to_the_actor_and_logoff_notes_the_open_step() -> None:
    s = witnessing()
    d = ok(s.witness_cancel(now=at(2)))
    assert d.state is S.AUTHENTICATED and d.signature is None
    ok(s.witness_begin(now=at(3), action="controlled_waste"))
    d = ok(s.tick(now=at(63)))
    assert d.state is S.LOGGED_OUT
    assert d.outcomes[0].details["witness_step_open"] == "controlled_waste"


# --- clearing a lockout (issue 12) ---------------------------------------------------------------------------------


def test_clearing_a_lockout_records_the_reason_and_what_was_cleared() -> None:
    s = new(FsmSettings(max_failed_logins=2, lockout_duration=None))
    s.login(now=T0, credentials=wrong_pin(NURSE))
    s.login(now=at(1), credentials=wrong_pin(NURSE))
    assert s.lockout_of("NURSE1").is_locked(at(2))
    d = ok(s.clear_lockout(now=at(2), admin=ADMIN, user_id="NURSE1", reason="  identity checked at the desk  "))
    assert d.state is S.LOGGED_OUT and d.kinds() == (OutcomeKind.LOCKOUT_CLEARED,)
    o = d.outcomes[0]
    assert (o.actor_id, o.reason_code, o.note) == ("ADMIN1", "cleared_by_administrator", "identity checked at the desk")
    assert o.details == {"cleared_user_id": "NURSE1", "failures": 2, "was_locked": True}
    assert o.to_record().event_type.value == "session.lockout_cleared"
    assert s.lockout_of("NURSE1").failures == 0
    ok(s.login(now=at(3), credentials=pin(NURSE)))


@pytest.mark.parametrize(("failures", "reason", "note"), [(0, None, None), (1, "   ", None), (3, "reset", "reset")])
def test_clearing_a_user_who_is_not_locked(failures: int, reason: str | None, note: str | None) -> None:
    s = new()
    for i in range(failures):
        s.login(now=at(i), credentials=wrong_pin(NURSE))
    d = ok(s.clear_lockout(now=at(9), admin=ADMIN, user_id="NURSE1", reason=reason))
    o = d.outcomes[0]
    assert o.note == note and o.details["failures"] == failures and o.details["was_locked"] is False


@pytest.mark.parametrize(
    "admin",
    [NURSE2, TECH, user("OLDADMIN", Role.ADMIN, active=False)],
    ids=["nurse", "technician", "inactive_admin"],
)
def test_only_a_usable_administrator_clears_a_lockout(admin: object) -> None:
    s = new(FsmSettings(max_failed_logins=1, lockout_duration=None))
    s.login(now=T0, credentials=wrong_pin(NURSE))
    d = refused(s.clear_lockout(now=at(1), admin=admin, user_id="NURSE1", reason="please"),  # type: ignore[arg-type]
                "policy.privilege_missing")  # fmt: skip
    assert d.outcomes == () and s.lockout_of("NURSE1").is_locked(at(1))


def test_an_administrator_logged_in_may_clear_another_users_lockout() -> None:
    s = new(FsmSettings(max_failed_logins=1, lockout_duration=None))
    s.login(now=T0, credentials=wrong_pin(NURSE))
    logged_in(s, ADMIN, at(1))
    d = ok(s.clear_lockout(now=at(2), admin=ADMIN, user_id="NURSE1", reason="checked"))
    assert d.state is S.AUTHENTICATED and s.active_user_id == "ADMIN1"
