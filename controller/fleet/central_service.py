"""The central server's fleet process: ingest workers plus the downlink publishers, until stopped.

Responsible for: starting ``workers`` ingest workers on the shared durable consumer (one process may run several;
several processes may run side by side); reconciling the users, formulary and census buckets with the central's
tables every ``directory_interval_s`` (a document put while the link was down is put again); and keeping the
ledger's monthly partitions ahead of the clock. Not responsible for the HTTP console (``adc central serve``
starts both).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.domain.clock import Clock
from controller.fleet import link as links
from controller.fleet.central_worker import AppliedObserver, CentralWorker, WorkerConfig
from controller.fleet.directory import SOURCES, Source, VersionedPublisher
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
        self, db: Database, nats_url: str, clock: Clock, *, name: str = "central", config: CentralConfig | None = None,
        observers: Sequence[AppliedObserver] = (),
    ) -> None:  # fmt: skip
        self.db = db
        self.nats_url = nats_url
        self.clock = clock
        self.config = config or CentralConfig()
        self.workers = [
            CentralWorker(db, nats_url, clock, name=f"{name}-w{i}", config=self.config.worker, observers=observers)
            for i in range(self.config.workers)
        ]
        self.publishers = [VersionedPublisher(db, source, clock) for source in SOURCES]

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            *(worker.run(stop) for worker in self.workers),
            self._publish_all(stop),
            self._keep_partitions(stop),
        )

    async def _publish_all(self, stop: asyncio.Event) -> None:
        """Every publisher on one connection to NATS (its consumers and watchers rebuilt by each publisher)."""
        link = await links.connect(self.nats_url, name="central-downlink", stop=stop)
        if link is None:
            return
        try:
            await asyncio.gather(*(self._publish(link, publisher, stop) for publisher in self.publishers))
        finally:
            await link.close()

    async def _publish(self, link: links.Link, publisher: VersionedPublisher, stop: asyncio.Event) -> None:
        source: Source = publisher.source
        while not stop.is_set():
            try:
                bucket = await links.bucket(link.js, source.bucket, history=5)
                await publisher.run(bucket, stop, interval_s=self.config.directory_interval_s)
            except Exception:  # the link or the database is away: rebuilt, it puts what was missed
                log.warning("publisher of %s stopped; rebuilding it", source.bucket, exc_info=True)
                await links.sleep_or_stop(1.0, stop)

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
