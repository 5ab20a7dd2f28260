"""The outbox table as a queue: what is due, and recording how each attempt ended. Blocking store calls.

Order per patient: a message is due only when no earlier message of the same patient (same cabinet, same
``patient_key``) is parked or waiting out a refusal's backoff; earlier messages that are due come first in ``id``
order, and the sender stops a patient's run at the first one not delivered. ``id`` order is commit order for a
cabinet, since rows are inserted while the append holds the cabinet's ledger head lock.

Every attempt leaves a row in ``hl7_outbox_attempts``, written in the transaction that updates the message; a
message becomes ``delivered`` only in the transaction that records its AA (several AAs may share one).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from controller.integration.hl7.outbound.errors import OutboundError
from controller.integration.hl7.outbound.policy import RetryPolicy
from controller.store.database import Database
from controller.store.models import Base, Hl7OutboxAttemptRow, Hl7OutboxRow

PENDING = "pending"
DELIVERED = "delivered"
PARKED = "parked"

OUTBOX = Base.metadata.tables[Hl7OutboxRow.__tablename__]
ATTEMPTS = Base.metadata.tables[Hl7OutboxAttemptRow.__tablename__]
_INSERT_ATTEMPT = insert(ATTEMPTS)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    control_id: str
    message_type: str
    patient_key: str
    payload: str
    attempts: int
    refusals: int


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def due(db: Database, cabinet_id: str | None, now: datetime, limit: int) -> list[QueuedMessage]:
    """Pending messages of ``cabinet_id`` (None: of every cabinet, at the central) whose patient's queue is not
    held, oldest first. A patient's queue is per cabinet: a message held at one cabinet holds no other's."""
    o, b = OUTBOX.alias("o"), OUTBOX.alias("b")
    held = (
        select(b.c.id)
        .where(
            b.c.cabinet_id == o.c.cabinet_id,
            b.c.patient_key == o.c.patient_key,
            b.c.id <= o.c.id,
            or_(b.c.status == PARKED, and_(b.c.status == PENDING, b.c.next_attempt_at > utc(now))),
        )
        .exists()
    )
    statement = (
        select(o.c.id, o.c.control_id, o.c.message_type, o.c.patient_key, o.c.payload, o.c.attempts, o.c.refusals)
        .where(o.c.status == PENDING, ~held, *([o.c.cabinet_id == cabinet_id] if cabinet_id is not None else []))
        .order_by(o.c.id)
        .limit(limit)
    )
    with db.reader.connect() as connection:
        return [QueuedMessage(*row) for row in connection.execute(statement)]


@dataclass(frozen=True, slots=True)
class Delivery:
    """An accepting ACK received for a message, to be recorded."""

    message: QueuedMessage
    at: datetime
    ack_code: str  # AA, or CA from an enhanced-mode receiver
    ack: str


_MARK_DELIVERED = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("outbox_id"))
    .values(
        status=DELIVERED,
        attempts=OUTBOX.c.attempts + 1,
        last_attempt_at=bindparam("at"),
        delivered_at=bindparam("at"),
        ack=bindparam("ack_text"),
    )
)


def record_delivered(db: Database, deliveries: Sequence[Delivery]) -> None:
    """Mark messages delivered, with their ACKs, in one transaction (several ACKs share one durable commit)."""
    with db.write() as session:
        connection = session.connection()
        connection.execute(
            _MARK_DELIVERED, [{"outbox_id": d.message.id, "at": utc(d.at), "ack_text": d.ack} for d in deliveries]
        )
        connection.execute(
            _INSERT_ATTEMPT,
            [_attempt(d.message, d.at, DELIVERED, ack_code=d.ack_code, ack=d.ack) for d in deliveries],
        )


def record_refused(
    db: Database,
    message: QueuedMessage,
    now: datetime,
    problem: OutboundError,
    *,
    ack_code: str,
    ack: str,
    policy: RetryPolicy,
    rng: random.Random,
) -> bool:
    """An AE/AR answer: retry later, or park after ``policy.max_refusals``. True when parked."""
    refusals = message.refusals + 1
    parked = refusals >= policy.max_refusals
    values: dict[str, Any] = {
        "attempts": OUTBOX.c.attempts + 1,
        "refusals": refusals,
        "last_attempt_at": utc(now),
        "last_error_code": "hl7.outbound_parked" if parked else problem.code,
        "last_error": problem.detail,
        "next_attempt_at": utc(now) + timedelta(seconds=0 if parked else policy.delay(refusals, rng)),
    }
    if parked:
        values["status"] = PARKED
    with db.write() as session:
        connection = session.connection()
        connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(**values))
        connection.execute(
            _INSERT_ATTEMPT,
            _attempt(message, now, PARKED if parked else "refused", ack_code=ack_code, ack=ack, problem=problem),
        )
    return parked


def record_failure(db: Database, message: QueuedMessage, now: datetime, problem: OutboundError) -> None:
    """A link failure: the message stays due (the sender's own backoff spaces the next attempt)."""
    with db.write() as session:
        connection = session.connection()
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == message.id)
            .values(
                attempts=OUTBOX.c.attempts + 1,
                last_attempt_at=utc(now),
                last_error_code=problem.code,
                last_error=problem.detail,
            )
        )
        connection.execute(_INSERT_ATTEMPT, _attempt(message, now, "failed", problem=problem))


def requeue(db: Database, cabinet_id: str, outbox_id: int, now: datetime) -> str:
    """An operator sends a parked message again (its refusal count starts over). Its control id."""
    with db.write() as session:
        connection = session.connection()
        found = connection.execute(
            select(OUTBOX.c.control_id).where(
                OUTBOX.c.id == outbox_id, OUTBOX.c.cabinet_id == cabinet_id, OUTBOX.c.status == PARKED
            )
        ).scalar_one_or_none()
        if found is None:
            raise OutboundError(
                "hl7.outbox_not_parked",
                f"no parked message #{outbox_id} for cabinet {cabinet_id}; only parked messages are requeued",
                outbox_id=outbox_id,
            )
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id)
            .values(status=PENDING, refusals=0, next_attempt_at=utc(now), last_error_code=None, last_error="")
        )
        return str(found)


def listing(
    db: Database, cabinet_id: str, *, include_delivered: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """The queue as people read it: undelivered messages (and optionally the delivered ones), oldest first."""
    columns = [c for c in OUTBOX.c if c.name != "payload"]
    statement = select(*columns).where(OUTBOX.c.cabinet_id == cabinet_id)
    if not include_delivered:
        statement = statement.where(OUTBOX.c.status != DELIVERED)
    with db.reader.connect() as connection:
        rows = connection.execute(statement.order_by(OUTBOX.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def counts(db: Database, cabinet_id: str) -> dict[str, int]:
    statement = select(OUTBOX.c.status, func.count()).where(OUTBOX.c.cabinet_id == cabinet_id).group_by(OUTBOX.c.status)
    with db.reader.connect() as connection:
        found = {str(status): int(count) for status, count in connection.execute(statement)}
    return {status: found.get(status, 0) for status in (PENDING, PARKED, DELIVERED)}


def _attempt(
    message: QueuedMessage,
    now: datetime,
    outcome: str,
    *,
    ack_code: str | None = None,
    ack: str | None = None,
    problem: OutboundError | None = None,
) -> dict[str, Any]:
    return {
        "outbox_id": message.id,
        "attempted_at": utc(now),
        "outcome": outcome,
        "ack_code": ack_code,
        "error_code": problem.code if problem else None,
        "detail": problem.detail if problem else "",
        "ack": ack,
    }
