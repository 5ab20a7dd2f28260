"""The cabinet's forwarder: store and forward of its ledger to the central server, and the central's downlink.

Responsible for: publishing the cabinet's ledger in seq order from the last entry JetStream acknowledged (the
cabinet's own seq is the cursor; each message is signed and carries ``Nats-Msg-Id = <cabinet>:<seq>``), so while
the link is down the cabinet works from its own store and entries queue there, and on reconnect they drain in
order; publishing again from where the central asks when it reports a gap; heartbeats (clock, head, what waits);
writing the central's committed head back into the cabinet's ledger as a ``fleet.anchored`` entry (at most one per
``anchor_interval_s``, never anchoring an anchor, so anchors do not feed on themselves); halting, with a tamper
entry, when the central's head contradicts the cabinet's own chain (a local rewrite); and applying the central's
user directory by version, so a user disabled centrally cannot log in here seconds later, and the formulary and
this cabinet's care area's census (patients, encounters, orders) the same way. Every JetStream consumer
and watcher is rebuilt after a reconnect.

Not responsible for: what the cabinet does while offline (it never waits for the link), or the chain rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from controller.domain.cabinet_config import KINDS, config_key
from controller.domain.clock import Clock
from controller.domain.directory import DownlinkDocument, kv_token
from controller.errors import ControllerError, VerificationError
from controller.fleet import link as links
from controller.fleet import protocol as p
from controller.fleet.link import best_effort
from controller.store import fleet_downlink as downlinks
from controller.store import fleet_link as store
from controller.store.database import Database
from controller.store.ledger import Ledger

log = logging.getLogger(__name__)

# The cabinet's engine applies its own layout and policy (they change what its running machines decide): given the
# document and whether it is offered again, it says ``applied``, ``same``, ``refused`` (and records why) or
# ``waiting`` (refused for now, e.g. a pocket still holds stock: offered again every configuration_retry_s).
Configure = Callable[[DownlinkDocument, bool], Awaitable[str]]
WAITING = "waiting"


@dataclass(frozen=True)
class ForwarderConfig:
    batch: int = 200
    poll_s: float = 0.1
    publish_timeout_s: float = 5.0
    heartbeat_s: float = 5.0
    anchor_interval_s: float = 60.0
    configuration_retry_s: float = 30.0


@dataclass
class ForwarderStatus:
    link_up: bool = False
    published_seq: int = 0
    acknowledged_seq: int = 0
    head_seq: int = 0
    halted: str | None = None
    users_applied: int = 0
    users_refused: int = 0
    downlink_applied: int = 0
    downlink_refused: int = 0

    @property
    def queued(self) -> int:
        return max(0, self.head_seq - self.published_seq)


class Forwarder:
    def __init__(
        self, db: Database, ledger: Ledger, signing_key: Ed25519PrivateKey, nats_url: str, clock: Clock, *,
        config: ForwarderConfig | None = None, configure: Configure | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.ledger = ledger
        self.cabinet_id = p.check_cabinet_id(ledger.cabinet_id)
        self.key = signing_key
        self.nats_url = nats_url
        self.clock = clock
        self.config = config or ForwarderConfig()
        self.configure = configure
        self._waiting: dict[str, DownlinkDocument] = {}  # kind -> a layout or policy to offer the engine again
        self.status = ForwarderStatus()
        self._rewind_to: int | None = None
        self._resends = 0  # how often the central asked to publish again: part of the message id after a rewind
        self._pending_head: p.AcknowledgedHead | None = None

    async def run(self, stop: asyncio.Event) -> None:
        state = await asyncio.to_thread(store.forward_state, self.db, self.cabinet_id)
        self.status.published_seq, self.status.halted = state.published_seq, state.halted_code
        link = await links.connect(self.nats_url, name=f"cabinet-{self.cabinet_id}", stop=stop)
        if link is None:
            return
        try:
            while not stop.is_set():
                link.reconnected.clear()
                tasks = [
                    asyncio.create_task(self._publish(link, stop)),
                    asyncio.create_task(self._heartbeats(link, stop)),
                    asyncio.create_task(self._watch_head(link, stop)),
                    asyncio.create_task(self._watch_downlink(link, stop)),
                    asyncio.create_task(self._listen_resend(link, stop)),
                ]
                reconnected = asyncio.create_task(link.reconnected.wait())
                halted = asyncio.create_task(stop.wait())
                children = (*tasks, reconnected, halted)
                try:
                    await asyncio.wait(children, return_when=asyncio.FIRST_COMPLETED)
                finally:  # also when this task is cancelled: no part of a stopped forwarder keeps publishing
                    for task in children:
                        task.cancel()
                    await asyncio.gather(*children, return_exceptions=True)
                if not stop.is_set():
                    await asyncio.sleep(0.2)  # a task failed or the link came back: build them again
        finally:
            await link.close()

    # --- uplink -------------------------------------------------------------------------------------------------

    async def _publish(self, link: links.Link, stop: asyncio.Event) -> None:
        subject = p.ledger_subject(self.cabinet_id)
        while not stop.is_set():
            links.raise_if_cancelled()
            if self._rewind_to is not None:
                to, self._rewind_to = self._rewind_to, None
                self._resends += 1
                await asyncio.to_thread(store.rewind, self.db, self.cabinet_id, to, self.clock.now())
                self.status.published_seq = min(self.status.published_seq, to)
            if self.status.halted:
                await asyncio.sleep(self.config.poll_s * 10)
                continue
            entries = await asyncio.to_thread(
                store.entries_after, self.db, self.cabinet_id, self.status.published_seq, limit=self.config.batch
            )
            if not entries:
                self.status.head_seq = self.status.published_seq
                await asyncio.sleep(self.config.poll_s)
                continue
            try:
                pending = []
                for entry in entries:
                    payload = p.encode_entry(entry)
                    headers = {
                        p.MSG_ID_HEADER: p.msg_id(self.cabinet_id, entry.seq, resend=self._resends),
                        p.SIGNATURE_HEADER: p.sign(self.key, payload),
                    }
                    pending.append(await link.js.publish_async(subject, payload, headers=headers))
                await asyncio.wait_for(asyncio.gather(*pending), self.config.publish_timeout_s)
            except Exception as exc:  # link down or slow: the entries stay queued in the store; try again
                self.status.link_up = False
                log.info("cabinet %s: publishing paused (%s)", self.cabinet_id, type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            self.status.link_up = True
            self.status.published_seq = entries[-1].seq
            await asyncio.to_thread(store.mark_published, self.db, self.cabinet_id, entries[-1].seq, self.clock.now())

    async def _heartbeats(self, link: links.Link, stop: asyncio.Event) -> None:
        while not stop.is_set():
            links.raise_if_cancelled()
            self.status.head_seq = await asyncio.to_thread(store.head_seq, self.db, self.cabinet_id)
            if not link.client.is_connected:
                # nats-py would buffer the beat and send it on reconnect, hours late: the central would take its
                # old clock reading for a cabinet clock that is off. The next beat after the reconnect says it all.
                self.status.link_up = False
                await asyncio.sleep(self.config.heartbeat_s)
                continue
            beat = p.Heartbeat(self.cabinet_id, self.clock.now(), self.status.head_seq, self.status.published_seq)
            payload = p.encode_heartbeat(beat)
            try:
                await link.client.publish(
                    p.heartbeat_subject(self.cabinet_id),
                    payload,
                    headers={p.SIGNATURE_HEADER: p.sign(self.key, payload)},
                )
            except Exception:  # a heartbeat lost with the link: the next one says the same
                log.debug("heartbeat not sent", exc_info=True)
            await asyncio.sleep(self.config.heartbeat_s)

    async def _listen_resend(self, link: links.Link, stop: asyncio.Event) -> None:
        async def on_resend(message: Msg) -> None:
            text = message.data.decode(errors="replace")
            if text.isdigit() and int(text) >= 1:
                self._rewind_to = int(text) - 1

        subscription = await link.client.subscribe(p.resend_subject(self.cabinet_id), cb=on_resend)
        try:
            await stop.wait()
        finally:
            await best_effort(asyncio.wait_for(subscription.unsubscribe(), 2.0))

    # --- the central's head: anchors and the rewrite check -------------------------------------------------------

    async def _watch_head(self, link: links.Link, stop: asyncio.Event) -> None:
        heads: KeyValue = await links.bucket(link.js, p.HEADS_BUCKET)
        watcher = await heads.watch(self.cabinet_id)
        try:
            while not stop.is_set():
                try:
                    update = await watcher.updates(timeout=self.config.heartbeat_s)
                except Exception:  # nats TimeoutError: nothing new; a throttled anchor may be due
                    update = None
                links.raise_if_cancelled()
                if update is not None and update.value:
                    try:
                        self._pending_head = p.decode_head(update.value)
                    except ControllerError as exc:
                        log.warning("cabinet %s: unreadable head from the central: %s", self.cabinet_id, exc)
                if self._pending_head is not None:
                    await asyncio.to_thread(self._settle_head, self._pending_head)
        finally:
            await best_effort(asyncio.wait_for(watcher.stop(), 2.0))

    def _settle_head(self, head: p.AcknowledgedHead) -> None:
        now = self.clock.now()
        local = store.entry_at(self.db, self.cabinet_id, head.seq)
        if local is None or local[0] != head.hash:
            detail = f"the central holds seq {head.seq} as {head.hash}; this cabinet's chain " + (
                "ends before it" if local is None else f"holds {local[0]}"
            )
            store.halt(self.db, self.ledger, "fleet.local_chain_rewritten", detail, now)
            self.status.halted = "fleet.local_chain_rewritten"
            self._pending_head = None
            return
        state = store.record_acknowledged(self.db, self.cabinet_id, head.seq, head.hash, now)
        self.status.acknowledged_seq = head.seq
        if head.seq <= state.anchored_seq or local[1] == "fleet.anchored":
            self._pending_head = None
            return
        due = state.anchored_at is None or now - state.anchored_at >= timedelta(seconds=self.config.anchor_interval_s)
        if due:
            store.anchor(self.db, self.ledger, head.seq, head.hash, now)
            self._pending_head = None

    # --- the directory -----------------------------------------------------------------------------------------

    async def _watch_downlink(self, link: links.Link, stop: asyncio.Event) -> None:
        """The users, the formulary, this cabinet's care area's census and (with an engine to apply them) its own
        layout and policy, each from its bucket."""
        area = await asyncio.to_thread(downlinks.care_area_of, self.db, self.cabinet_id)
        watched = [self._watch(link, stop, p.USERS_BUCKET, ">", self._in_thread(lambda _k, v: self._apply_user(v))),
                   self._watch(link, stop, p.FORMULARY_BUCKET, ">", self._in_thread(self._apply_downlink))]  # fmt: skip
        if area is not None:
            watched.append(self._watch(link, stop, p.CENSUS_BUCKET, f"{kv_token(area)}.>",
                                       self._in_thread(self._apply_downlink)))  # fmt: skip
        if self.configure is not None:
            own = f"{kv_token(self.cabinet_id)}.>"
            watched.append(self._watch(link, stop, p.CABINETS_BUCKET, own, self._apply_configuration))
            watched.append(self._offer_waiting(stop))
        await asyncio.gather(*watched)

    @staticmethod
    def _in_thread(apply: Callable[[str, bytes], None]) -> Callable[[str, bytes], Awaitable[None]]:
        async def applying(key: str, payload: bytes) -> None:
            await asyncio.to_thread(apply, key, payload)

        return applying

    async def _watch(
        self, link: links.Link, stop: asyncio.Event, name: str, keys: str,
        apply: Callable[[str, bytes], Awaitable[None]],
    ) -> None:  # fmt: skip
        bucket: KeyValue = await links.bucket(link.js, name, history=5)
        watcher = await (bucket.watchall() if keys == ">" else bucket.watch(keys))
        try:
            while not stop.is_set():
                try:
                    update = await watcher.updates(timeout=self.config.heartbeat_s)
                except Exception:  # nats TimeoutError: nothing new
                    continue
                finally:
                    links.raise_if_cancelled()
                if update is None or not update.value:
                    continue
                await apply(update.key, update.value)
        finally:
            await best_effort(asyncio.wait_for(watcher.stop(), 2.0))

    def _apply_downlink(self, key: str, payload: bytes) -> None:
        try:
            document = p.decode_downlink(payload)
            if document.key != key:
                raise VerificationError("fleet.unreadable_message", f"a document for {document.key[:80]!r} was "
                                        f"put under {key[:80]!r}")  # fmt: skip
        except ControllerError as exc:
            log.warning("cabinet %s: downlink document refused: %s", self.cabinet_id, exc)
            downlinks.refuse(self.db, self.ledger, exc.code, exc.detail, {"key": key[:200]})
            self.status.downlink_refused += 1
            return
        outcome = downlinks.apply_document(self.db, self.ledger, document, self.clock.now())
        if outcome == "applied":
            self.status.downlink_applied += 1
        elif outcome in ("stale", "refused"):
            self.status.downlink_refused += 1

    async def _apply_configuration(self, key: str, payload: bytes) -> None:
        assert self.configure is not None
        try:
            document = p.decode_downlink(payload)
            if document.kind not in KINDS or key != config_key(self.cabinet_id, document.kind) or document.key != key:
                raise VerificationError("fleet.unreadable_message", f"a {document.kind[:40]!r} document for "
                                        f"{document.key[:80]!r} was put under {key[:80]!r}")  # fmt: skip
        except ControllerError as exc:
            log.warning("cabinet %s: configuration refused: %s", self.cabinet_id, exc)
            await asyncio.to_thread(downlinks.refuse, self.db, self.ledger, exc.code, exc.detail, {"key": key[:200]})
            self.status.downlink_refused += 1
            return
        await self._offer(document, retry=False)

    async def _offer(self, document: DownlinkDocument, *, retry: bool) -> None:
        assert self.configure is not None
        outcome = await self.configure(document, retry)
        if outcome == WAITING:
            self._waiting[document.kind] = document
            self.status.downlink_refused += not retry
            return
        waiting = self._waiting.get(document.kind)
        if waiting is not None and waiting.version <= document.version:
            del self._waiting[document.kind]
        if outcome == "applied":
            self.status.downlink_applied += 1
        elif outcome == "refused":
            self.status.downlink_refused += 1

    async def _offer_waiting(self, stop: asyncio.Event) -> None:
        """A layout the engine could not take yet (a pocket still held stock), offered again until it can."""
        while not stop.is_set():
            await links.sleep_or_stop(self.config.configuration_retry_s, stop)
            for document in list(self._waiting.values()):
                await self._offer(document, retry=True)

    def _apply_user(self, payload: bytes) -> None:
        try:
            record = p.decode_directory_record(payload)
        except ControllerError as exc:
            log.warning("cabinet %s: directory record refused: %s", self.cabinet_id, exc)
            downlinks.refuse(self.db, self.ledger, exc.code, exc.detail, {"kind": downlinks.USER})
            self.status.users_refused += 1
            return
        outcome = downlinks.apply_user(self.db, self.ledger, record, self.clock.now())
        if outcome == "applied":
            self.status.users_applied += 1
        elif outcome in ("stale", "refused"):
            self.status.users_refused += 1
