"""The outbox sender: an asyncio task that delivers due messages over one MLLP connection and records each ACK.

Loop: read what is due (``queue.due``: oldest first, patients whose queue is held left out), send each in turn and
wait for its ACK, record the outcome, then look again; when nothing is due, wait ``poll_s`` (or ``wake()``).

- AA (or an enhanced-mode CA): the message is marked delivered. The mark is committed in the background while
  the next message goes out, several marks sharing one durable commit (at most ``MAX_UNCOMMITTED`` wait; all are
  committed before the queue is read again and on close): one fsync per message would cap the drain at the disk's
  commit rate. The patient's next message goes out only after this one's AA, so the receiver always applies a
  patient's messages in order; a crash before a mark's commit means a resend under the same MSH-10, which the
  receiver recognises (HL7 receivers deduplicate by sender and control id, ours does).
- AE/AR (CE/CR): recorded as refused with the ACK; ``RetryPolicy`` decides when to try again or to park it. The
  patient's later messages wait; other patients' go on.
- A link failure (unreachable, dropped, no ACK in time, an ACK for another control id, something that is no
  ACK): recorded on the message, the connection is closed, and the sender waits the policy's backoff before it
  reconnects. The message stays first in its patient's queue.

After a restart a new sender simply reads the table: nothing is lost (every message is a committed row) and
nothing is marked delivered without its ACK. Run one sender per cabinet and store. Store calls run on one worker
thread, as the listener's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, TypeVar

from controller.domain.clock import Clock
from controller.integration.hl7.outbound import queue
from controller.integration.hl7.outbound.client import AckReply, MllpConnection
from controller.integration.hl7.outbound.errors import OutboundError
from controller.integration.hl7.outbound.policy import RetryPolicy
from controller.store.database import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_UNCOMMITTED = 100  # delivered marks waiting for their commit: what a crash would send again
ACCEPTED = frozenset({"AA", "CA"})
ERRORS = frozenset({"AE", "CE"})
REJECTIONS = frozenset({"AR", "CR"})


class Attempt(StrEnum):
    DELIVERED = "delivered"
    REFUSED = "refused"
    LINK_FAILED = "link_failed"


class OutboxSender:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        cabinet_id: str | None,
        host: str,
        port: int,
        policy: RetryPolicy | None = None,
        connect_timeout_s: float = 5.0,
        ack_timeout_s: float = 30.0,
        poll_s: float = 0.5,
        batch: int = 200,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cabinet_id = cabinet_id
        self.host = host
        self.port = port
        self.policy = policy or RetryPolicy()
        self.connect_timeout_s = connect_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.poll_s = poll_s
        self.batch = batch
        self.rng = rng or random.Random()
        self.delivered = 0
        self.link_failures = 0  # in a row; reset by any answer
        self._connection: MllpConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._uncommitted: list[queue.Delivery] = []
        self._committing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hl7-outbox")

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hl7:outbox-sender")

    def wake(self) -> None:
        """Look for due messages now instead of at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop: a message waiting for its ACK stays pending and is sent again by the next sender."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # an AA received is worth recording; failing that, it is resent
            await self._flush()
        await self._drop_connection()
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))

    async def __aenter__(self) -> OutboxSender:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the loop ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        store_failures = 0
        while True:
            try:
                delivered = await self.drain_once()
                store_failures = 0
            except Exception:  # a store fault: what was not committed is sent again; pause as for a link failure
                store_failures += 1
                log.exception("HL7 outbox: delivery round failed (%d in a row)", store_failures)
                await asyncio.sleep(self.policy.delay(store_failures, self.rng))
                continue
            if delivered == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
                self._wake.clear()

    async def drain_once(self) -> int:
        """One round over what is due now; how many messages were delivered. After a link failure it waits the
        backoff and returns, so the next round starts from the table again."""
        due = await self._store(queue.due, self.db, self.cabinet_id, self.clock.now(), self.batch)
        held: set[str] = set()
        delivered = 0
        for message in due:
            if message.patient_key in held:
                continue
            outcome = await self._deliver(message)
            if outcome is Attempt.DELIVERED:
                delivered += 1
                continue
            held.add(message.patient_key)
            if outcome is Attempt.LINK_FAILED:
                await self._flush()
                await asyncio.sleep(self.policy.delay(self.link_failures, self.rng))
                break
        await self._flush()  # what is due is read from the table: every mark must be in it first
        return delivered

    async def _deliver(self, message: queue.QueuedMessage) -> Attempt:
        try:
            reply = await self._exchange(message)
        except OutboundError as failure:
            await self._drop_connection()
            self.link_failures += 1
            log.warning("HL7 outbox: %s not delivered: %s", message.control_id, failure)
            await self._store(queue.record_failure, self.db, message, self.clock.now(), failure)
            return Attempt.LINK_FAILED
        self.link_failures = 0
        if reply.code in ACCEPTED:
            await self._mark(queue.Delivery(message, self.clock.now(), reply.code, reply.raw))
            self.delivered += 1
            return Attempt.DELIVERED
        code = "hl7.outbound_error" if reply.code in ERRORS else "hl7.outbound_rejected"
        problem = OutboundError(
            code,
            f"{self.host}:{self.port} answered {reply.code} to {message.control_id}: {reply.text or 'no reason given'}",
            control_id=message.control_id,
        )
        parked = await self._store(
            functools.partial(
                queue.record_refused,
                self.db,
                message,
                self.clock.now(),
                problem,
                ack_code=reply.code,
                ack=reply.raw,
                policy=self.policy,
                rng=self.rng,
            )
        )
        log.warning("HL7 outbox: %s%s", problem, " (parked)" if parked else "")
        return Attempt.REFUSED

    async def _exchange(self, message: queue.QueuedMessage) -> AckReply:
        if self._connection is None:
            self._connection = await MllpConnection.open(self.host, self.port, timeout_s=self.connect_timeout_s)
        reply = await self._connection.exchange(message.payload.encode("utf-8"), timeout_s=self.ack_timeout_s)
        if reply.control_id != message.control_id:
            raise OutboundError(
                "hl7.outbound_bad_ack",
                f"the ACK acknowledges {reply.control_id!r}, not {message.control_id!r}",
                control_id=message.control_id,
            )
        if reply.code not in ACCEPTED | ERRORS | REJECTIONS:
            raise OutboundError("hl7.outbound_bad_ack", f"MSA-1 {reply.code!r} is not an acknowledgement code")
        return reply

    async def _mark(self, delivery: queue.Delivery) -> None:
        self._uncommitted.append(delivery)
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_marks(), name="hl7:outbox-marks")
        if len(self._uncommitted) >= MAX_UNCOMMITTED:
            await self._flush()

    async def _commit_marks(self) -> None:
        """Commit the delivered marks, whatever arrived meanwhile in one transaction each round."""
        try:
            while self._uncommitted:
                batch, self._uncommitted = self._uncommitted, []
                await self._store(queue.record_delivered, self.db, batch)
        finally:
            self._uncommitted = []  # after a store failure the rest are sent again: the receiver knows them
            self._committing = None

    async def _flush(self) -> None:
        if self._committing is not None:
            await asyncio.shield(self._committing)

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def _store(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(call, *args))
