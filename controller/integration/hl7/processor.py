"""One inbound message in, one ACK out: idempotency, the transaction, the archive.

For each frame, in one database transaction (two when it is refused):

1. a frame that is no usable message (not HL7, a batch, bad separators, MSH problems, unsupported type or
   event) is refused (AR, or AE for a bad MSH field) and archived;
2. a message already applied (same sender MSH-3/MSH-4 and MSH-10, same content) gets the ACK it got then and is
   archived as a duplicate, nothing applied again; the same control id with different content is refused (AE,
   205), since one of the two would be lost silently otherwise;
3. otherwise its handler runs: success commits its effect with the archive row and the processed control id
   (AA); a refusal rolls the whole transaction back, so nothing of it stays, and the archive row (AE/AR with the
   reason) is written in a transaction of its own.

Only applied messages are remembered as processed: a refused one may be corrected and sent again under the same
control id. A failure of the store itself (nothing committed) answers AE with ``hl7.internal_error`` so the sender
resends. This class never raises; it runs on one worker thread (the store calls block).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.domain.clock import Clock
from controller.errors import ControllerError
from controller.integration.hl7.ack import Acknowledger
from controller.integration.hl7.census import Context
from controller.integration.hl7.errors import AckCode, Hl7Error
from controller.integration.hl7.inbound import Inbound, read_frame
from controller.integration.hl7.structures import find_route
from controller.store.database import Database
from controller.store.models import Base, Hl7InboundMessageRow, Hl7ProcessedMessageRow

log = logging.getLogger(__name__)
# Built once and run on the transaction's connection: every message pays for these, and a prebuilt plain
# statement skips the ORM's bookkeeping and SQLAlchemy's per-call compilation (about half the CPU per message).
_ARCHIVE = Base.metadata.tables[Hl7InboundMessageRow.__tablename__]
_PROCESSED = Base.metadata.tables[Hl7ProcessedMessageRow.__tablename__]
_INSERT_ARCHIVE = insert(_ARCHIVE).returning(_ARCHIVE.c.id)
_INSERT_PROCESSED = insert(_PROCESSED)
_FIND_PROCESSED = select(_PROCESSED).where(
    _PROCESSED.c.sender == bindparam("sender"), _PROCESSED.c.control_id == bindparam("control_id")
)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ERROR = "error"  # AE: read, but wrong or inconsistent; nothing applied
    REJECTED = "rejected"  # AR: not processed (unsupported or unreadable)


class _Refused(Exception):  # noqa: N818 - a control-flow signal, not an error kind
    """Raised out of the message's transaction so it rolls back whole; carries why."""

    def __init__(self, problem: Hl7Error) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Receipt:
    """A frame as it arrived: what it holds, when, from whom."""

    inbound: Inbound
    received: datetime
    peer: str


@dataclass(frozen=True, slots=True)
class Result:
    ack: str
    ack_code: AckCode
    outcome: Outcome
    archive_id: int | None
    error: Hl7Error | None = None


class InboundProcessor:
    def __init__(self, db: Database, clock: Clock, acknowledger: Acknowledger) -> None:
        self.db = db
        self.clock = clock
        self.acknowledger = acknowledger

    def process(self, payload: bytes, peer: str) -> Result:
        return self._process(read_frame(payload), peer)

    def process_oversize(self, head: bytes, size: int, limit: int, peer: str) -> Result:
        """A frame too large to keep: answered from its first bytes (enough for MSH), archived as that head."""
        partial = read_frame(head)
        problem = Hl7Error(
            "hl7.message_too_large",
            f"the frame has {size} bytes; this listener accepts at most {limit} (only the first {len(head)} were kept)",
        )
        return self._process(Inbound(head, partial.content_hash, partial.message, partial.header, problem), peer)

    def _process(self, inbound: Inbound, peer: str) -> Result:
        receipt = Receipt(inbound, self.clock.now(), peer[:100])
        for attempt in (1, 2):
            try:
                with self.db.write() as session:
                    return self._in_transaction(session, receipt)
            except _Refused as refused:  # the handler's transaction is rolled back; the refusal gets its own
                return self._record_refusal(receipt, refused.problem)
            except IntegrityError:
                # Another connection applied the same control id in the meantime; the retry finds it processed.
                if attempt == 2:
                    log.exception("HL7 message from %s could not be recorded", peer)
            except Exception:
                log.exception("HL7 message from %s could not be processed", peer)
                break
        return self._unrecorded(receipt)

    def _in_transaction(self, session: Session, receipt: Receipt) -> Result:
        inbound = receipt.inbound
        header, message = inbound.header, inbound.message
        if inbound.problem is not None or header is None or message is None:
            problem = inbound.problem or Hl7Error("hl7.unparseable", "the message has no readable header")
            return self._refuse(session, receipt, problem)
        try:
            route = find_route(header, message)
        except Hl7Error as problem:
            return self._refuse(session, receipt, problem)
        found = session.connection().execute(
            _FIND_PROCESSED, {"sender": header.sender_key, "control_id": header.control_id}
        )
        prior = found.one_or_none()
        if prior is not None:
            return self._repeat(session, receipt, prior)
        ctx = Context(now=receipt.received, control_id=header.control_id, notes=[])
        try:
            route.handler(session, message, ctx)
        except Hl7Error as problem:
            raise _Refused(problem) from problem
        except ControllerError as exc:
            raise _Refused(Hl7Error("hl7.bad_value", f"{exc.code}: {exc.detail}")) from exc
        except Exception as exc:  # a bug or a store fault inside the handler: refused, rolled back, archived
            log.exception("HL7 %s %s from %s failed", header.type_label, header.control_id, receipt.peer)
            failure = Hl7Error("hl7.internal_error", f"{type(exc).__name__} while applying the message")
            raise _Refused(failure) from exc
        ack = self._ack(AckCode.ACCEPT, receipt, None)
        archived = _archive(session, receipt, Outcome.APPLIED, AckCode.ACCEPT, ack, detail="; ".join(ctx.notes))
        session.connection().execute(
            _INSERT_PROCESSED,
            {
                "sender": header.sender_key,
                "control_id": header.control_id,
                "content_hash": inbound.content_hash,
                "archive_id": archived,
                "ack": ack,
                "applied_at": receipt.received,
            },
        )
        return Result(ack, AckCode.ACCEPT, Outcome.APPLIED, archived)

    def _repeat(self, session: Session, receipt: Receipt, prior: Row[Any]) -> Result:
        """``prior``: the hl7_processed_messages row of the same sender and control id."""
        if prior.content_hash == receipt.inbound.content_hash:
            detail = f"repeat of message #{prior.archive_id} applied at {prior.applied_at.isoformat()}; not applied"
            archived = _archive(session, receipt, Outcome.DUPLICATE, AckCode.ACCEPT, prior.ack, detail=detail)
            return Result(prior.ack, AckCode.ACCEPT, Outcome.DUPLICATE, archived)
        assert receipt.inbound.message is not None
        reused = Hl7Error(
            "hl7.control_id_reused",
            f"control id {prior.control_id!r} from this sender was applied to another message "
            f"(#{prior.archive_id}); each message needs its own MSH-10",
            location=receipt.inbound.message.header.location(10),
        )
        return self._refuse(session, receipt, reused)

    def _refuse(self, session: Session, receipt: Receipt, problem: Hl7Error) -> Result:
        code = problem.ack_code
        ack = self._ack(code, receipt, problem)
        outcome = Outcome.REJECTED if code is AckCode.REJECT else Outcome.ERROR
        archived = _archive(session, receipt, outcome, code, ack, detail=str(problem), problem=problem)
        return Result(ack, code, outcome, archived, problem)

    def _record_refusal(self, receipt: Receipt, problem: Hl7Error) -> Result:
        try:
            with self.db.write() as session:
                return self._refuse(session, receipt, problem)
        except Exception:
            log.exception("HL7 refusal for a message from %s could not be archived", receipt.peer)
            return self._unrecorded(receipt)

    def _unrecorded(self, receipt: Receipt) -> Result:
        """The store failed: answer AE so the sender resends, and archive the refusal if the store lets us."""
        problem = Hl7Error("hl7.internal_error", "the message could not be stored here; nothing was applied")
        ack = self._ack(AckCode.ERROR, receipt, problem)
        try:
            with self.db.write() as session:
                archived = _archive(
                    session, receipt, Outcome.ERROR, AckCode.ERROR, ack, detail=str(problem), problem=problem
                )
                return Result(ack, AckCode.ERROR, Outcome.ERROR, archived, problem)
        except Exception:
            log.exception("HL7 refusal for a message from %s could not be archived either", receipt.peer)
            return Result(ack, AckCode.ERROR, Outcome.ERROR, None, problem)

    def _ack(self, code: AckCode, receipt: Receipt, problem: Hl7Error | None) -> str:
        return self.acknowledger.build(
            code,
            receipt.inbound.header,
            ack_control_id=f"ACK{uuid.uuid4().hex[:17]}",
            now=receipt.received,
            error=problem,
        )


def _archive(
    session: Session,
    receipt: Receipt,
    outcome: Outcome,
    code: AckCode,
    ack: str,
    *,
    detail: str = "",
    problem: Hl7Error | None = None,
) -> int:
    """Append the archive row (a plain insert: archive rows are never changed); its id."""
    header = receipt.inbound.header
    session.flush()  # ORM changes of the handler first, then the plain insert on the same connection
    inserted = session.connection().execute(
        _INSERT_ARCHIVE,
        {
            "received_at": receipt.received,
            "peer": receipt.peer,
            "sender": header.sender_key if header else None,
            "control_id": header.control_id[:199] if header and header.control_id else None,
            "message_type": header.type_label[:40] if header and header.message_type else None,
            "payload": receipt.inbound.payload,
            "content_hash": receipt.inbound.content_hash,
            "outcome": outcome.value,
            "ack_code": code.value,
            "error_code": problem.code if problem else None,
            "detail": detail,
            "ack": ack,
        },
    )
    return int(inserted.scalar_one())
