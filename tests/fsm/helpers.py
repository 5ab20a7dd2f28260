"""Builders shared by the state-machine tests: users, items, orders and a logged-in cabinet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from controller.domain.medication import DeaSchedule, Medication
from controller.domain.ndc import Ndc
from controller.domain.patients import Order, OrderStatus
from controller.domain.users import Role, User
from controller.fsm.base import Decision
from controller.fsm.session import Credentials, Factor, Session

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def user(user_id: str, *roles: Role, **kwargs: object) -> User:
    return User(id=user_id, display_name=user_id, roles=frozenset(roles), **kwargs)  # type: ignore[arg-type]


NURSE = user("NURSE1", Role.NURSE)
NURSE2 = user("NURSE2", Role.NURSE)
TECH = user("TECH1", Role.TECHNICIAN)
PHARM = user("PHARM1", Role.PHARMACIST)
ADMIN = user("ADMIN1", Role.ADMIN)
QA = user("QA1", Role.QA)


def med(item_id: str, schedule: DeaSchedule = DeaSchedule.NONE, serial: int = 1000) -> Medication:
    return Medication(
        id=item_id,
        ndc=Ndc("99999", f"{serial:04d}", "01"),
        generic_name=item_id,
        display_name=item_id,
        strength="",
        dosage_form="injection",
        route="IV",
        unit="each",
        dea_schedule=schedule,
    )


CEFAZOLIN = med("cefazolin", serial=1001)
MORPHINE = med("morphine", DeaSchedule.II, serial=1002)
NALOXONE = med("naloxone", serial=1003)


def order(order_id: str, item: Medication, patient_id: str = "MRN-1", *, verified: bool = True) -> Order:
    return Order(
        id=order_id,
        patient_id=patient_id,
        item_id=item.id,
        dose_amount=Decimal(4),
        dose_unit="mg",
        route="IV",
        frequency="q4h PRN",
        status=OrderStatus.ACTIVE,
        pharmacist_verified=verified,
    )


def pin(u: User | None, user_id: str | None = None) -> Credentials:
    return Credentials(user_id or (u.id if u else "NOBODY"), u, verified=frozenset({Factor.PIN}))


def wrong_pin(u: User | None, user_id: str | None = None) -> Credentials:
    return Credentials(user_id or (u.id if u else "NOBODY"), u, failed=frozenset({Factor.PIN}))


def ok(decision: Decision) -> Decision:
    assert decision.accepted, decision.refusal
    return decision


def refused(decision: Decision, code: str) -> Decision:
    assert decision.refused, f"expected refusal {code}, got {decision.state}"
    assert decision.refusal is not None and decision.refusal.code == code, decision.refusal
    assert decision.state is decision.state_before
    return decision


def logged_in(session: Session, u: User = NURSE, now: datetime = T0) -> Session:
    ok(session.login(now=now, credentials=pin(u)))
    return session
