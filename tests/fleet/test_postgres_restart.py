"""The central's PostgreSQL server itself restarted (a private server, stopped and started again) while cabinets
drain: the workers keep their batches until it answers again; afterwards the central's ledger equals each
cabinet's chain entry for entry, nothing dead-lettered, and the stock view agrees with the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from controller.domain.clock import SystemClock
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.store.central import schema as central_schema
from controller.store.database import Database
from tests.fleet.harness import NatsServer, central_chain, eventually, local_chain, make_cabinet
from tests.fleet.private_postgres import binaries, private_postgres
from tests.fleet.test_fleet_stock import cabinet_lots, central_lots

pytestmark = [pytest.mark.timeout(240)]

FAST = WorkerConfig(ack_wait_s=2.0, fetch_timeout_s=0.2)


@pytest.mark.skipif(binaries() is None, reason="PostgreSQL's server binaries are not installed (Debian postgresql)")
def test_a_postgresql_restart_mid_drain_loses_nothing_and_applies_nothing_twice(
    nats: NatsServer, tmp_path: Path
) -> None:
    with private_postgres() as server:
        central_db = Database.open(server.url)
        central_schema.upgrade(central_db)

        async def scenario() -> None:
            stop = asyncio.Event()
            workers = [CentralWorker(central_db, nats.url, SystemClock(), name=f"w{i}", config=FAST) for i in range(2)]
            tasks = [asyncio.create_task(w.run(stop)) for w in workers]
            cabinets = [make_cabinet(tmp_path, central_db, f"CAB-P{i}", nats.url, seeded=True) for i in range(3)]
            for cabinet in cabinets:
                cabinet.start()
            for cabinet in cabinets:
                await asyncio.to_thread(cabinet.dispense, 100)
            await eventually(lambda: len(central_chain(central_db, "CAB-P0")) > 20, what="the drain under way")
            await asyncio.to_thread(server.stop)  # the server goes away: every connection, every transaction
            for cabinet in cabinets:
                await asyncio.to_thread(cabinet.dispense, 50)  # the cabinets work on
            await asyncio.sleep(3)
            await asyncio.to_thread(server.start)
            await eventually(
                lambda: all(local_chain(c) == central_chain(central_db, c.cabinet_id) for c in cabinets),
                timeout=90,
                what="every chain whole at the central after the restart",
            )
            for cabinet in cabinets:
                await cabinet.halt()
                assert central_lots(central_db, cabinet.cabinet_id) == cabinet_lots(cabinet)
                cabinet.db.dispose()
            stop.set()
            await asyncio.gather(*tasks)
            assert sum(w.stats.dead_letters for w in workers) == 0
            # A commit whose answer the stop swallowed is retried and judged a duplicate: each entry is in the
            # ledger once (the chains above are equal entry for entry), though no worker counted it as applied.
            with central_db.reader.connect() as connection:
                rows, distinct = connection.execute(
                    text("SELECT count(*), count(DISTINCT (cabinet_id, seq)) FROM fleet_ledger")
                ).one()
            assert rows == distinct == sum(len(local_chain(c)) for c in cabinets)

        try:
            asyncio.run(scenario())
        finally:
            central_db.dispose()
