"""Publishing the central's user directory to the cabinets, through the users key-value bucket.

Responsible for: putting each user's latest directory record under its key, and reconciling (every record whose
version the bucket lacks is put again), so a record a lost link swallowed still arrives. A cabinet watching the
bucket applies a record within seconds of its put: a user disabled here cannot log in at a connected cabinet
well inside a minute.
"""

from __future__ import annotations

import asyncio

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from controller.domain.directory import DirectoryUser
from controller.fleet import protocol as p
from controller.store.central import directory
from controller.store.database import Database


async def publish(users: KeyValue, record: DirectoryUser) -> None:
    await users.put(p.user_key(record.user_id), p.encode_directory_record(record))


async def reconcile(users: KeyValue, db: Database) -> int:
    """Put every record the bucket holds an older version of (or none); returns how many were put."""

    def load() -> list[DirectoryUser]:
        with db.reader.connect() as connection:
            return directory.records(connection)

    put = 0
    for record in await asyncio.to_thread(load):
        try:
            held = await users.get(p.user_key(record.user_id))
            held_version = p.decode_directory_record(held.value).version if held.value else 0
        except KeyNotFoundError:
            held_version = 0
        if held_version < record.version:
            await publish(users, record)
            put += 1
    return put
