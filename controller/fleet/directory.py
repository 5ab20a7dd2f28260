"""Publishing the central's versioned documents to the cabinets through key-value buckets: the user directory
(``adc_users``), the formulary (``adc_formulary``), each care area's census (``adc_census``) and each cabinet's
layout and policy (``adc_cabinets``).

Responsible for: putting each document's latest version under its key whenever the bucket holds an older version
(or none), so a document a lost link swallowed still arrives, and one someone else put over it (an older one: a
restored backup, a replay) is put right again. The publisher follows its bucket with a watcher, so it knows what
the bucket holds without asking key by key; a round reads only the versions, and documents only for keys the
bucket is behind on. Before a round it may bring the documents up to the central's tables (``refresh``: the
formulary and census are rebuilt from what the HL7 listener wrote). A cabinet watching a bucket applies a
document within a second of its put.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from nats.js.kv import KeyValue
from sqlalchemy import Connection

from controller.domain.clock import Clock
from controller.domain.directory import CENSUS as CENSUS_KIND
from controller.domain.directory import FORMULARY as FORMULARY_KIND
from controller.domain.directory import DownlinkDocument
from controller.errors import ControllerError
from controller.fleet import protocol as p
from controller.fleet.link import sleep_or_stop
from controller.store.central import cabinet_config, directory, downlink
from controller.store.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One bucket's documents at the central: each key's version, the payloads of some keys, and how to read the
    version of a payload found in the bucket (raises ControllerError for an unreadable one)."""

    bucket: str
    versions: Callable[[Connection], dict[str, int]]
    payloads: Callable[[Connection, Collection[str]], list[tuple[str, int, bytes]]]
    version_of: Callable[[bytes], int]
    refresh: Callable[[Connection, datetime], int] | None = None


def _user_versions(connection: Connection) -> dict[str, int]:
    return {p.user_key(user): version for user, version in directory.versions(connection).items()}


def _user_payloads(connection: Connection, keys: Collection[str]) -> list[tuple[str, int, bytes]]:
    by_key = {p.user_key(user): user for user in directory.versions(connection)}
    records = directory.records(connection, [by_key[k] for k in keys if k in by_key])
    return [(p.user_key(r.user_id), r.version, p.encode_directory_record(r)) for r in records]


def _downlink(kind: str, bucket: str) -> Source:
    def payloads(connection: Connection, keys: Collection[str]) -> list[tuple[str, int, bytes]]:
        found = downlink.documents(connection, kind, keys)
        return [(key, version, p.encode_downlink(DownlinkDocument(kind, key, version, content)))
                for key, version, content in found]  # fmt: skip

    return Source(
        bucket,
        versions=lambda connection: downlink.versions(connection, kind),
        payloads=payloads,
        version_of=lambda payload: p.decode_downlink(payload).version,
        refresh=lambda connection, now: downlink.reconcile(connection, kind, now),
    )


def _configuration_payloads(connection: Connection, keys: Collection[str]) -> list[tuple[str, int, bytes]]:
    found = cabinet_config.documents(connection, keys)
    return [(key, version, p.encode_downlink(DownlinkDocument(kind, key, version, content)))
            for key, kind, version, content in found]  # fmt: skip


USERS = Source(
    p.USERS_BUCKET, _user_versions, _user_payloads, lambda payload: p.decode_directory_record(payload).version
)
FORMULARY = _downlink(FORMULARY_KIND, p.FORMULARY_BUCKET)
CENSUS = _downlink(CENSUS_KIND, p.CENSUS_BUCKET)
CONFIGURATION = Source(
    p.CABINETS_BUCKET,
    cabinet_config.versions,
    _configuration_payloads,
    version_of=lambda payload: p.decode_downlink(payload).version,
)
SOURCES = (USERS, FORMULARY, CENSUS, CONFIGURATION)


class VersionedPublisher:
    def __init__(self, db: Database, source: Source, clock: Clock) -> None:
        self.db = db
        self.source = source
        self.clock = clock
        self._in_bucket: dict[str, int] = {}  # key -> the version the bucket holds, as its watcher last said
        self.puts = 0

    async def run(self, bucket: KeyValue, stop: asyncio.Event, *, interval_s: float) -> None:
        """Follow the bucket and reconcile every ``interval_s`` until ``stop``; raises when the link fails."""
        watcher = await bucket.watchall()
        self._in_bucket.clear()
        while (update := await watcher.updates(timeout=10)) is not None:  # type: ignore[no-untyped-call]
            self._observe(update.key, update.value)  # the bucket's contents up to now; None marks their end
        following = asyncio.create_task(self._follow(watcher))
        try:
            while not stop.is_set():
                self.puts += await self.reconcile(bucket)
                if following.done():
                    following.result()  # the watcher died with the link: raise, and be rebuilt
                await sleep_or_stop(interval_s, stop)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for update in watcher:
            if update is not None:
                self._observe(update.key, update.value)

    def _observe(self, key: str, payload: bytes | None) -> None:
        if not payload:
            return
        try:
            self._in_bucket[key] = self.source.version_of(payload)
        except ControllerError:
            log.warning("unreadable document in bucket %s; the central's version is put over it", self.source.bucket)

    async def reconcile(self, bucket: KeyValue) -> int:
        """Put every document the bucket holds an older version of (or none); returns how many were put."""
        current = await asyncio.to_thread(self._versions)
        behind = {key for key, version in current.items() if self._in_bucket.get(key, 0) < version}
        if not behind:
            return 0
        payloads = await asyncio.to_thread(self._payloads, behind)
        for key, version, payload in payloads:
            await bucket.put(key, payload)
            self._in_bucket[key] = version
        return len(payloads)

    def _versions(self) -> dict[str, int]:
        if self.source.refresh is not None:
            with self.db.writer.begin() as connection:
                self.source.refresh(connection, self.clock.now())
        with self.db.writer.connect() as connection:  # the primary: a replica may not hold the refresh yet
            return self.source.versions(connection)

    def _payloads(self, keys: set[str]) -> list[tuple[str, int, bytes]]:
        with self.db.writer.connect() as connection:
            return self.source.payloads(connection, keys)
