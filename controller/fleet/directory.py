"""Publishing the central's user directory to the cabinets, through the users key-value bucket.

Responsible for: putting each user's latest directory record under its key whenever the bucket holds an older
version (or none), so a record a lost link swallowed still arrives, and a record someone else put over it (an
older one: a restored backup, a replay) is put right again. The publisher follows the bucket with a watcher, so it
knows what the bucket holds without asking key by key; a round reads only the directory's versions, and records
only for users the bucket is behind on. A cabinet watching the bucket applies a record within a second of its put.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js.kv import KeyValue

from controller.domain.directory import DirectoryUser
from controller.errors import ControllerError
from controller.fleet import protocol as p
from controller.fleet.link import sleep_or_stop
from controller.store.central import directory
from controller.store.database import Database

log = logging.getLogger(__name__)


async def publish(users: KeyValue, record: DirectoryUser) -> None:
    await users.put(p.user_key(record.user_id), p.encode_directory_record(record))


class DirectoryPublisher:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._in_bucket: dict[str, int] = {}  # user -> the version the bucket holds, as its watcher last said
        self.puts = 0

    async def run(self, users: KeyValue, stop: asyncio.Event, *, interval_s: float) -> None:
        """Follow the bucket and reconcile every ``interval_s`` until ``stop``; raises when the link fails."""
        watcher = await users.watchall()
        self._in_bucket.clear()
        while (update := await watcher.updates(timeout=10)) is not None:  # type: ignore[no-untyped-call]
            self._observe(update.value)  # the bucket's contents up to now; None marks their end
        following = asyncio.create_task(self._follow(watcher))
        try:
            while not stop.is_set():
                self.puts += await self.reconcile(users)
                if following.done():
                    following.result()  # the watcher died with the link: raise, and be rebuilt
                await sleep_or_stop(interval_s, stop)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for update in watcher:
            if update is not None:
                self._observe(update.value)

    def _observe(self, payload: bytes | None) -> None:
        if not payload:
            return
        try:
            record = p.decode_directory_record(payload)
        except ControllerError:
            log.warning("unreadable record in the users bucket; the directory's version is put over it")
            return
        self._in_bucket[record.user_id] = record.version

    async def reconcile(self, users: KeyValue) -> int:
        """Put every record the bucket holds an older version of (or none); returns how many were put."""
        current = await asyncio.to_thread(self._versions)
        behind = {user for user, version in current.items() if self._in_bucket.get(user, 0) < version}
        if not behind:
            return 0
        records = await asyncio.to_thread(self._records, behind)
        for record in records:
            await publish(users, record)
            self._in_bucket[record.user_id] = record.version
        return len(records)

    def _versions(self) -> dict[str, int]:
        with self.db.reader.connect() as connection:
            return directory.versions(connection)

    def _records(self, user_ids: set[str]) -> list[DirectoryUser]:
        with self.db.reader.connect() as connection:
            return directory.records(connection, user_ids)
