"""A hospital on one machine for the fleet tests: a private NATS server with JetStream, a TCP proxy that can cut
and stall a cabinet's link, and light cabinets (their own SQLite store, ledger and forwarder) against one central
on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.domain.clock import Clock, SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.fleet import protocol as p
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.fleet.forwarder import Forwarder, ForwarderConfig
from controller.fleet.nats_server import NatsServer
from controller.store import schema
from controller.store.central import ledger as central
from controller.store.database import Database
from controller.store.fleet_link import entries_after
from controller.store.formulary_file import load_formulary
from controller.store.ledger import Ledger
from controller.store.seed import demo_layout, seed_cabinet
from simulators.link_proxy import LinkProxy
from tests.store.test_inventory import FAST_HASHER


@dataclass
class Cabinet:
    """A light simulated cabinet: its own store and ledger, a forwarder, and doses it records."""

    cabinet_id: str
    db: Database
    ledger: Ledger
    key: Ed25519PrivateKey
    forwarder: Forwarder
    proxy: LinkProxy | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def dispense(self, count: int = 1, *, pocket: str | None = None) -> None:
        for _ in range(count):
            with self.db.write() as session:
                self.ledger.append(
                    session,
                    LedgerRecord(
                        EventType.DOSE_REMOVED,
                        actor_id="nurse1",
                        patient_id="P1",
                        item_id="morphine-2mg",
                        pocket_id=pocket or f"{self.cabinet_id}-D1-P1",
                        quantity_change=-1,
                    ),
                )

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.forwarder.run(self.stop))

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)
            self.task = None


def seed_demo(db: Database, ledger: Ledger, clock: Clock) -> None:
    """The demo cabinet's layout, users and stock under the ledger's cabinet id."""
    layout = demo_layout()
    layout["cabinet"]["id"] = ledger.cabinet_id
    with db.write() as session:
        seed_cabinet(session, layout, load_formulary(), ledger=ledger, clock=clock, hasher=FAST_HASHER)


def make_cabinet(
    root: Path, central_db: Database, cabinet_id: str, nats_url: str, *, clock: Clock | None = None,
    config: ForwarderConfig | None = None, register: bool = True, seeded: bool = False,
) -> Cabinet:  # fmt: skip
    """A light cabinet; ``seeded``: loaded with the demo cabinet's layout, users and stock under ``cabinet_id``."""
    db = Database.open(f"sqlite:///{root / (cabinet_id + '.db')}", create=True)
    schema.upgrade(db)
    clock = clock or SystemClock()
    ledger = Ledger(cabinet_id, clock, is_simulator=True)
    if seeded:
        seed_demo(db, ledger, clock)
    key = p.new_signing_key()
    if register:
        with central_db.writer.begin() as connection:
            central.register_cabinet(
                connection, cabinet_id, name=cabinet_id, care_area="4W", public_key=p.public_key_text(key),
                now=SystemClock().now(),
            )  # fmt: skip
    forwarder = Forwarder(
        db, ledger, key, nats_url, clock,
        config=config or ForwarderConfig(heartbeat_s=0.5, anchor_interval_s=0.5, poll_s=0.05),
    )  # fmt: skip
    return Cabinet(cabinet_id, db, ledger, key, forwarder)


def local_chain(cabinet: Cabinet) -> list[tuple[int, str, str]]:
    return [(e.seq, e.hash, e.body) for e in entries_after(cabinet.db, cabinet.cabinet_id, 0, limit=10**9)]


def central_chain(central_db: Database, cabinet_id: str) -> list[tuple[int, str, str]]:
    with central_db.reader.connect() as connection:
        return [(e.seq, e.hash, e.body) for e in central.chain_of(connection, cabinet_id)]


async def eventually(check: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> float:
    """Wait until ``check()`` holds; returns how long it took."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@contextlib.contextmanager
def nats_server(directory: Path) -> Iterator[NatsServer]:
    server = NatsServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def central_worker(
    central_db: Database, nats_url: str, config: WorkerConfig | None = None
) -> AsyncIterator[CentralWorker]:
    """One central ingest worker for the body of the block, stopped (and awaited) at its end."""
    stop = asyncio.Event()
    worker = CentralWorker(central_db, nats_url, SystemClock(), config=config)
    running = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await running
