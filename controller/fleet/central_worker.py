"""One central ingest worker: pulls cabinets' ledger entries from JetStream and applies them to PostgreSQL.

Responsible for: the shared durable pull consumer (any number of workers, in any number of processes, fetch from
the same one; kill any of them and its unacknowledged messages are redelivered to the others); refusing a message
that is unreadable, from an unregistered cabinet or not signed by the cabinet it names (an alarm and a dead letter,
never applied); acknowledging only after the PostgreSQL commit that applied or dropped the entry; publishing the
advanced heads to the cabinets (their anchors) and asking a cabinet to resend when its chain has a gap; bounded
redelivery of a message whose processing fails, then the dead-letter subject. While PostgreSQL is unreachable the
worker keeps its batch, tells JetStream it is still working on it and retries: an outage of the database never
sends an entry to the dead letters; a batch still being applied is kept from redelivery the same way.
Heartbeats update each cabinet's last contact and clock skew, and, once nothing of the stream is pending, reveal a
lost tail (a cabinet published beyond the central's head and no later entry came to show the gap): the worker asks
that cabinet to publish again from the first missing seq, with a doubling wait for the same head.

Not responsible for: the chain rule (``controller.domain.chain``) or how entries are stored
(``controller.store.central.ledger``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from controller.domain.chain import ChainEntry, ChainHead
from controller.domain.clock import Clock
from controller.errors import ControllerError
from controller.fleet import link as links
from controller.fleet import protocol as p
from controller.fleet.link import best_effort
from controller.store.central import ledger as central
from controller.store.central import tables as t
from controller.store.database import Database

log = logging.getLogger(__name__)

CLOCK_SKEW_LIMIT = timedelta(minutes=5)
_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkerConfig:
    batch: int = 500
    fetch_timeout_s: float = 0.5
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    heartbeat_flush_s: float = 1.0
    tail_resend_s: float = 5.0  # first wait before asking again for the same lost tail; doubles up to 10 min


@dataclass
class WorkerStats:
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    refused: int = 0
    dead_letters: int = 0
    batches: int = 0
    db_retries: int = 0
    heartbeats: int = 0
    tail_resends: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class _Cabinet:
    public_key: str
    active: bool
    read_at: float  # monotonic time of the registry read: a re-key or a retirement is seen within CABINET_TTL_S


CABINET_TTL_S = 10.0
REGISTRY_RELOAD_S = 1.0  # the whole registry is read at most this often for a stale or unknown cabinet
TAIL_RESEND_MAX_S = 600.0


@dataclass(frozen=True)
class _TailAsk:
    head_seq: int  # the central's head when it last asked this cabinet for its tail
    not_before: float  # monotonic time before which the same head is not asked about again
    interval: float


# Told of every batch's applied entries inside the transaction that applies them (the central's HL7 outbox):
# what it writes commits or rolls back with the entries; an exception fails the batch, which is retried.
AppliedObserver = Callable[[Connection, Mapping[str, Sequence[tuple[ChainEntry, dict[str, Any]]]]], None]


class CentralWorker:
    def __init__(
        self, db: Database, nats_url: str, clock: Clock, *, name: str = "central", config: WorkerConfig | None = None,
        observers: Sequence[AppliedObserver] = (),
    ) -> None:  # fmt: skip
        self.db = db
        self.observers = tuple(observers)
        self.nats_url = nats_url
        self.clock = clock
        self.name = name
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self._cabinets: dict[str, _Cabinet] = {}
        self._registry_read_at = -REGISTRY_RELOAD_S  # monotonic time of the last whole-registry read
        self._beats: dict[str, tuple[p.Heartbeat, datetime]] = {}  # the latest beat of each and when it came
        self._tail_asks: dict[str, _TailAsk] = {}
        self.ready = asyncio.Event()

    # --- the loop ------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        link = await links.connect(self.nats_url, name=self.name, stop=stop)
        if link is None:
            return
        try:
            while not stop.is_set():
                try:
                    await self._session(link, stop)
                except Exception as exc:  # the link or a stream call failed: rebuild everything and go on
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("central worker %s: %s; rebuilding its consumers", self.name, self.stats.last_error)
                    await asyncio.sleep(0.5)
        finally:
            await link.close()

    async def _session(self, link: links.Link, stop: asyncio.Event) -> None:
        """One life of the consumers, rebuilt after every reconnect."""
        link.reconnected.clear()
        await links.declare_streams(link.js)
        await asyncio.to_thread(self._load_registry)
        heads = await links.bucket(link.js, p.HEADS_BUCKET)
        subscription = await link.js.pull_subscribe(
            p.LEDGER_SUBJECTS,
            durable=p.INGEST_CONSUMER,
            stream=p.LEDGER_STREAM,
            config=ConsumerConfig(
                durable_name=p.INGEST_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.config.ack_wait_s,
                max_deliver=self.config.max_deliver,
                max_ack_pending=50_000,
            ),
        )
        beats = await link.client.subscribe(p.HEARTBEAT_SUBJECTS, queue=p.CENTRAL_QUEUE, cb=self._on_heartbeat)
        await self._republish(link, heads)
        flusher = asyncio.create_task(self._flush_heartbeats(link, subscription, stop))
        self.ready.set()
        try:
            while not stop.is_set() and not link.reconnected.is_set():
                try:
                    messages = await subscription.fetch(self.config.batch, timeout=self.config.fetch_timeout_s)
                except TimeoutError:
                    messages = []
                links.raise_if_cancelled()
                if not messages:
                    continue
                await self._handle(link, heads, messages, stop)
        finally:
            flusher.cancel()
            for closing in (subscription.unsubscribe(), beats.unsubscribe()):
                await best_effort(asyncio.wait_for(closing, 2.0))  # the connection may already be gone

    async def _republish(self, link: links.Link, heads: KeyValue) -> None:
        """After a (re)connect: every head again (a put lost with the link would leave a cabinet's anchor behind),
        and a resend request for every chain with entries held behind a gap."""
        current, gaps = await asyncio.to_thread(self._heads_and_gaps)
        await _put_heads(heads, current)
        await _ask_resend(link, gaps)

    def _heads_and_gaps(self) -> tuple[dict[str, ChainHead], dict[str, int]]:
        with self.db.reader.connect() as connection:
            current = {r.cabinet_id: ChainHead(int(r.seq), str(r.hash)) for r in connection.execute(select(t.heads))}
            held = connection.execute(select(t.held.c.cabinet_id).distinct()).scalars().all()
        return {c: h for c, h in current.items() if h.seq > 0}, {c: current[c].seq + 1 for c in held if c in current}

    # --- one batch ----------------------------------------------------------------------------------------------

    async def _handle(self, link: links.Link, heads: KeyValue, messages: list[Msg], stop: asyncio.Event) -> None:
        self.stats.batches += 1
        while True:
            try:
                result, refusals = await self._working_on(messages, asyncio.to_thread(self._apply, messages))
                break
            except (OperationalError, DBAPIError) as exc:
                if not _is_disconnect(exc):
                    await self._one_by_one(link, heads, messages)
                    return
                # PostgreSQL is away: keep the batch, keep JetStream from redelivering it elsewhere, try again.
                self.stats.db_retries += 1
                self.stats.last_error = f"database: {type(exc).__name__}"
                for message in messages:
                    await best_effort(message.in_progress())
                if stop.is_set():
                    return
                await asyncio.sleep(0.5)
            except Exception as exc:  # a bug or a poison message: find which, one message at a time
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                await self._one_by_one(link, heads, messages)
                return
        await self._after_commit(link, heads, messages, result, refusals)

    async def _working_on(self, messages: list[Msg], work: Awaitable[_T]) -> _T:
        """Await ``work`` while telling JetStream, every half ack wait, that these messages are still being
        processed: a slow batch (a loaded database, a lock held by another worker) is not redelivered over and
        over until ``max_deliver`` drops it. A killed worker stops telling, and its batch goes to the others."""
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.config.ack_wait_s / 2)
            if done:
                return task.result()
            for message in messages:
                await best_effort(message.in_progress())

    async def _one_by_one(self, link: links.Link, heads: KeyValue, messages: list[Msg]) -> None:
        for message in messages:
            try:
                result, refusals = await asyncio.to_thread(self._apply, [message])
            except Exception as exc:  # this message fails on its own: bounded redelivery, then the dead letters
                delivered = message.metadata.num_delivered
                if delivered >= self.config.max_deliver:
                    await self._dead_letter(link, message, "fleet.dead_letter", f"{type(exc).__name__}: {exc}")
                else:
                    await best_effort(message.nak(delay=min(30.0, 0.5 * 2**delivered)))
                continue
            await self._after_commit(link, heads, [message], result, refusals)

    async def _after_commit(
        self, link: links.Link, heads: KeyValue, messages: list[Msg], result: central.IngestResult,
        refusals: list[tuple[Msg, str, str]],
    ) -> None:  # fmt: skip
        for message in messages:  # the commit is done: only now may JetStream forget them
            await best_effort(message.ack())
        for message, code, detail in refusals:
            await self._dead_letter(link, message, code, detail, recorded=True)
        await _put_heads(heads, result.heads)
        await _ask_resend(link, result.resend_from)
        for outcome in result.outcomes:
            if outcome.verdict == "apply":
                self.stats.applied += 1
            elif outcome.verdict == "duplicate":
                self.stats.duplicates += 1
            elif outcome.verdict == central.HELD:
                self.stats.held += 1
            else:
                self.stats.refused += 1

    def _apply(self, messages: list[Msg]) -> tuple[central.IngestResult, list[tuple[Msg, str, str]]]:
        now = self.clock.now()
        entries: list[ChainEntry] = []
        refusals: list[tuple[Msg, str, str]] = []
        for message in messages:
            try:
                entries.append(self._admit(message))
            except ControllerError as exc:
                refusals.append((message, exc.code, exc.detail))
        with self.db.writer.begin() as connection:
            for message, code, detail in refusals:
                cabinet_id = message.subject.rsplit(".", 1)[-1][:64]
                # The message's digest tells two refused messages apart; a redelivery of one raises nothing new.
                signature = str((message.headers or {}).get(p.SIGNATURE_HEADER, ""))
                digest = hashlib.sha256(message.data + signature.encode()).hexdigest()
                central.record_alarm(
                    connection, cabinet_id, _claimed_seq(message), code, detail, now=now, entry_hash=digest
                )
                _record_dead_letter(connection, message, code, detail, now)
            result = central.ingest(connection, entries, now=now)
            if result.applied_entries:
                for observer in self.observers:
                    observer(connection, result.applied_entries)
        return result, refusals

    def _admit(self, message: Msg) -> ChainEntry:
        entry = p.decode_entry(message.data, subject=message.subject)
        signature = (message.headers or {}).get(p.SIGNATURE_HEADER)
        cabinet = self._cabinet(entry.cabinet_id)
        try:
            _check(cabinet, entry.cabinet_id, message.data, signature)
        except ControllerError:
            # The registry may have changed since it was read (a new key, a retirement): judge on a fresh read.
            _check(self._cabinet(entry.cabinet_id, fresh=True), entry.cabinet_id, message.data, signature)
        return entry

    def _cabinet(self, cabinet_id: str, *, fresh: bool = False) -> _Cabinet | None:
        """The registry's record of a cabinet, at most CABINET_TTL_S old (``fresh``: read now). A stale or missing
        one is read with the whole registry (one query, however many cabinets) unless that was read less than
        REGISTRY_RELOAD_S ago: with thousands of cabinets a row per message would be the ingest's main cost."""
        known = self._cabinets.get(cabinet_id)
        now = time.monotonic()
        if known is not None and not fresh and now - known.read_at < CABINET_TTL_S:
            return known
        if not fresh and now - self._registry_read_at >= REGISTRY_RELOAD_S:
            self._load_registry()
            return self._cabinets.get(cabinet_id)
        with self.db.reader.connect() as connection:
            row = connection.execute(
                select(t.cabinets.c.public_key, t.cabinets.c.active).where(t.cabinets.c.cabinet_id == cabinet_id)
            ).first()
        if row is None:
            self._cabinets.pop(cabinet_id, None)
            return None
        self._cabinets[cabinet_id] = _Cabinet(str(row.public_key), bool(row.active), time.monotonic())
        return self._cabinets[cabinet_id]

    def _load_registry(self) -> None:
        """Every registered cabinet in one query, so the first message of each after a restart costs no lookup."""
        with self.db.reader.connect() as connection:
            rows = connection.execute(select(t.cabinets.c.cabinet_id, t.cabinets.c.public_key, t.cabinets.c.active))
            read_at = time.monotonic()
            self._cabinets = {r.cabinet_id: _Cabinet(str(r.public_key), bool(r.active), read_at) for r in rows}
        self._registry_read_at = read_at

    async def _dead_letter(
        self, link: links.Link, message: Msg, code: str, detail: str, *, recorded: bool = False
    ) -> None:
        self.stats.dead_letters += 1
        headers = {"Adc-Code": code, "Adc-Detail": detail[:500], "Adc-Subject": message.subject}
        await best_effort(link.js.publish(p.DEAD_LETTER_SUBJECT, message.data, headers=headers))
        if not recorded:
            now = self.clock.now()
            try:
                await asyncio.to_thread(self._record_dead_letter, message, code, detail, now)
            except Exception:  # the dead-letter stream holds it even when the database cannot
                log.warning("dead letter of %s kept in NATS only", message.subject, exc_info=True)
        await best_effort(message.term())

    def _record_dead_letter(self, message: Msg, code: str, detail: str, now: datetime) -> None:
        with self.db.writer.begin() as connection:
            _record_dead_letter(connection, message, code, detail, now)

    # --- heartbeats ----------------------------------------------------------------------------------------------

    async def _on_heartbeat(self, message: Msg) -> None:
        try:
            beat = p.decode_heartbeat(message.data)
            cabinet = self._cabinets.get(beat.cabinet_id)
            if cabinet is None or time.monotonic() - cabinet.read_at >= CABINET_TTL_S:
                cabinet = await asyncio.to_thread(self._cabinet, beat.cabinet_id)
            # An unknown or retired cabinet's heartbeat changes nothing; its entries raise the alarm.
            _check(cabinet, beat.cabinet_id, message.data, (message.headers or {}).get(p.SIGNATURE_HEADER))
        except ControllerError as exc:
            log.info("heartbeat on %s refused: %s", message.subject, exc)
            return
        self._beats[beat.cabinet_id] = (beat, self.clock.now())
        self.stats.heartbeats += 1

    async def _flush_heartbeats(
        self, link: links.Link, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.config.heartbeat_flush_s)
            if not self._beats:
                continue
            beats, self._beats = self._beats, {}
            idle = await _consumer_idle(subscription)
            try:
                behind = await asyncio.to_thread(self._record_heartbeats, list(beats.values()), idle=idle)
            except Exception:  # the next heartbeats say the same; nothing else depends on these
                log.warning("recording heartbeats", exc_info=True)
                continue
            await _ask_resend(link, self._due_tail_asks(behind))

    def _record_heartbeats(self, beats: list[tuple[p.Heartbeat, datetime]], *, idle: bool) -> dict[str, int]:
        """Each beat's last contact and skew (judged against the central's clock when the beat came, not when it
        is written); with ``idle`` (nothing of the stream waits or is being processed: everything published
        before the beats has been committed), the cabinets that published beyond the central's head, so lost their
        tail (a message dropped after its last delivery, a stream purged), each with the first seq the central
        lacks."""
        now = self.clock.now()
        behind: dict[str, int] = {}
        with self.db.writer.begin() as connection:
            rows: list[dict[str, Any]] = []
            for beat, came in beats:
                skew = (beat.sent_at - came).total_seconds()
                rows.append(
                    {"cab": beat.cabinet_id, "last_contact_at": came, "clock_skew_s": skew,
                     "reported_head_seq": beat.head_seq, "reported_published_seq": beat.published_seq,
                     "reported_open_alarms": beat.open_alarms}
                )  # fmt: skip
                if abs(skew) > CLOCK_SKEW_LIMIT.total_seconds():
                    central.record_alarm(
                        connection, beat.cabinet_id, None, "fleet.clock_skew",
                        f"the cabinet's clock is {skew:+.0f} s from the central's", now=now,
                    )  # fmt: skip
            connection.execute(update(t.cabinets).where(t.cabinets.c.cabinet_id == bindparam("cab")), rows)
            if idle:
                published = {b.cabinet_id: b.published_seq for b, _ in beats}
                heads = connection.execute(
                    select(t.heads.c.cabinet_id, t.heads.c.seq).where(t.heads.c.cabinet_id.in_(published))
                ).all()
                held = {h.cabinet_id: int(h.seq) for h in heads}
                behind = {c: held.get(c, 0) + 1 for c, seq in published.items() if seq > held.get(c, 0)}
        return behind

    def _due_tail_asks(self, behind: dict[str, int]) -> dict[str, int]:
        """The lost tails to ask for now: the same head is asked about again only after a doubling wait, so a
        cabinet whose next entry is refused every time is not made to republish its queue every heartbeat."""
        due: dict[str, int] = {}
        moment = time.monotonic()
        for cabinet_id, first_missing in behind.items():
            last = self._tail_asks.get(cabinet_id)
            if last is not None and last.head_seq == first_missing - 1 and moment < last.not_before:
                continue
            interval = (
                min(TAIL_RESEND_MAX_S, last.interval * 2)
                if last is not None and last.head_seq == first_missing - 1
                else self.config.tail_resend_s
            )
            self._tail_asks[cabinet_id] = _TailAsk(first_missing - 1, moment + interval, interval)
            due[cabinet_id] = first_missing
        self.stats.tail_resends += len(due)
        return due


async def _put_heads(heads: KeyValue, advanced: dict[str, ChainHead]) -> None:
    """Each head to its cabinet's key, together: a cabinet anchors what it reads there."""
    await asyncio.gather(
        *(best_effort(heads.put(c, p.encode_head(p.AcknowledgedHead(h.seq, h.hash)))) for c, h in advanced.items())
    )


async def _ask_resend(link: links.Link, first_missing: dict[str, int]) -> None:
    for cabinet_id, seq in first_missing.items():
        await best_effort(link.client.publish(p.resend_subject(cabinet_id), str(seq).encode()))


async def _consumer_idle(subscription: JetStreamContext.PullSubscription) -> bool:
    """Nothing of the ingest stream is waiting for a worker or being processed by one (False when NATS does not
    say: the heartbeats are recorded all the same, the tail is looked at next time)."""
    try:
        info = await asyncio.wait_for(subscription.consumer_info(), 2.0)
    except Exception:
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def _record_dead_letter(connection: Connection, message: Msg, code: str, detail: str, now: datetime) -> None:
    central.record_dead_letter(
        connection, subject=message.subject, stream_seq=message.metadata.sequence.stream, payload=message.data,
        code=code, detail=detail, now=now,
    )  # fmt: skip


def _check(cabinet: _Cabinet | None, cabinet_id: str, payload: bytes, signature: str | None) -> None:
    if cabinet is None or not cabinet.active:
        raise ControllerError("fleet.unknown_cabinet", f"cabinet {cabinet_id} is not registered (or is retired) here")
    p.check_signature(cabinet.public_key, payload, signature, cabinet_id=cabinet_id)


def _claimed_seq(message: Msg) -> int | None:
    """The seq the message id names (``<cabinet>:<seq>``, ``:r<n>`` after a resend), if it names one."""
    parts = str((message.headers or {}).get(p.MSG_ID_HEADER, "")).split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _is_disconnect(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
