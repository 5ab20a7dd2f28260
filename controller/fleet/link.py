"""Connecting to NATS and declaring the fleet's JetStream streams and key-value buckets.

Responsible for: one connection per process that reconnects for ever (a cabinet must come back however long the
link was down) and says when it did, so the caller rebuilds its consumers and watchers explicitly: nats-py restores
plain subscriptions after a reconnect but a JetStream consumer or KV watcher can stall silently. And the streams,
declared idempotently: the uplink ledger stream (file storage, a duplicate window that covers a republish after a
reconnect), the dead-letter stream, and the heads and users buckets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from controller.fleet import protocol as p

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 2 * 3600.0
LEDGER_MAX_AGE_S = 30 * 86400.0


@dataclass
class Link:
    """A connection and the signal that it came back after a drop."""

    client: Client
    js: JetStreamContext
    reconnected: asyncio.Event = field(default_factory=asyncio.Event)
    up: bool = True

    async def close(self) -> None:
        if not self.client.is_closed:
            try:
                await asyncio.wait_for(self.client.close(), 5.0)
            except Exception:  # closing a dead connection (or one stuck reconnecting): nothing to keep
                log.debug("closing NATS connection", exc_info=True)


async def connect(url: str, *, name: str, stop: asyncio.Event | None = None, retry_s: float = 1.0) -> Link | None:
    """Connect, retrying until it works or ``stop`` is set (then None)."""
    holder: list[Link] = []

    async def on_disconnect() -> None:
        if holder:
            holder[0].up = False

    async def on_reconnect() -> None:
        if holder:
            holder[0].up = True
            holder[0].reconnected.set()

    async def on_error(exc: Exception) -> None:
        log.debug("NATS %s: %s", name, exc)

    while stop is None or not stop.is_set():
        try:
            client = await nats.connect(
                servers=[url],
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                ping_interval=5,
                max_outstanding_pings=2,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
            )
        except Exception as exc:  # no server yet: a cabinet keeps working and tries again
            log.info("NATS at %s not reachable (%s); retrying", url, type(exc).__name__)
            await sleep_or_stop(retry_s, stop)
            continue
        link = Link(client, client.jetstream(timeout=5))
        holder.append(link)
        return link
    return None


async def best_effort(awaitable: Awaitable[object]) -> None:
    """A NATS call whose failure the protocol already covers: an unacknowledged message is redelivered and judged a
    duplicate, a head not put goes with the next, a resend not heard is asked again, an unsubscribe on a dead
    connection has nothing left to undo."""
    try:
        await awaitable
    except Exception:
        log.debug("best-effort NATS call failed", exc_info=True)


def raise_if_cancelled() -> None:
    """Honour a cancellation that a NATS call swallowed: nats-py waits with ``asyncio.wait_for``, which on Python
    3.11 returns the result when it arrives together with the cancel, and drops the cancel. The task still counts
    it (``cancelling()``), so a loop that checks here stops as it was told to."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def declare_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    await _stream(
        js,
        StreamConfig(
            name=p.LEDGER_STREAM,
            subjects=[p.LEDGER_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_S,
            max_age=LEDGER_MAX_AGE_S,
            num_replicas=replicas,
        ),
    )
    await _stream(
        js,
        StreamConfig(
            name=p.DEAD_LETTER_STREAM,
            subjects=["adc.dead.>"],
            storage=StorageType.FILE,
            num_replicas=replicas,
        ),
    )
    await bucket(js, p.HEADS_BUCKET, history=1)
    await bucket(js, p.USERS_BUCKET, history=5)


async def _stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)


async def bucket(js: JetStreamContext, name: str, *, history: int = 1) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=name, history=history, storage=StorageType.FILE))
