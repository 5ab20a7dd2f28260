"""The central server's fleet process: ingest workers plus the directory publisher, until stopped.

Responsible for: starting ``workers`` ingest workers on the shared durable consumer (one process may run several;
several processes may run side by side) and reconciling the users bucket with the central directory every
``directory_interval_s`` (a record put while the link was down is put again), and keeping the ledger's monthly
partitions ahead of the clock. Not responsible for the HTTP console (``adc central serve`` starts both).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from controller.domain.clock import Clock
from controller.fleet import link as links
from controller.fleet import protocol as p
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.fleet.directory import DirectoryPublisher
from controller.store.central import schema as central_schema
from controller.store.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CentralConfig:
    workers: int = 1
    directory_interval_s: float = 5.0
    partitions_interval_s: float = 3600.0
    worker: WorkerConfig = field(default_factory=WorkerConfig)


class CentralService:
    def __init__(
        self, db: Database, nats_url: str, clock: Clock, *, name: str = "central", config: CentralConfig | None = None
    ) -> None:
        self.db = db
        self.nats_url = nats_url
        self.clock = clock
        self.config = config or CentralConfig()
        self.workers = [
            CentralWorker(db, nats_url, clock, name=f"{name}-w{i}", config=self.config.worker)
            for i in range(self.config.workers)
        ]
        self.directory = DirectoryPublisher(db)

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            *(worker.run(stop) for worker in self.workers),
            self._publish_directory(stop),
            self._keep_partitions(stop),
        )

    async def _publish_directory(self, stop: asyncio.Event) -> None:
        link = await links.connect(self.nats_url, name="central-directory", stop=stop)
        if link is None:
            return
        try:
            while not stop.is_set():
                try:
                    users = await links.bucket(link.js, p.USERS_BUCKET, history=5)
                    await self.directory.run(users, stop, interval_s=self.config.directory_interval_s)
                except Exception:  # the link or the database is away: rebuilt, it puts what was missed
                    log.warning("directory publisher stopped; rebuilding it", exc_info=True)
                    await links.sleep_or_stop(1.0, stop)
        finally:
            await link.close()

    async def _keep_partitions(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._ensure_partitions)
            except Exception:  # entries outside the partitions land in the default one meanwhile
                log.warning("creating ledger partitions failed", exc_info=True)
            await links.sleep_or_stop(self.config.partitions_interval_s, stop)

    def _ensure_partitions(self) -> None:
        with self.db.writer.begin() as connection:
            central_schema.ensure_partitions(connection, self.clock.now().date())
