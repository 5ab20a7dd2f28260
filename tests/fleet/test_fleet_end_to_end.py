"""A hospital of simulated cabinets against one central over a private NATS JetStream and PostgreSQL: every
entry arrives once, in order, and the central's copy equals each cabinet's chain entry for entry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.domain.clock import SystemClock
from controller.fleet.central_worker import CentralWorker
from controller.store.database import Database
from tests.fleet.harness import NatsServer, central_chain, eventually, local_chain, make_cabinet

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def _run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 3])
def test_ten_cabinets_reach_the_central_exactly_once(
    central_db: Database, nats: NatsServer, tmp_path: Path, workers: int
) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        pool = [CentralWorker(central_db, nats.url, SystemClock(), name=f"w{i}") for i in range(workers)]
        tasks = [asyncio.create_task(w.run(stop)) for w in pool]
        cabinets = [make_cabinet(tmp_path, central_db, f"CAB-{i:02d}", nats.url) for i in range(10)]
        for cabinet in cabinets:
            cabinet.start()
        for _ in range(5):
            for cabinet in cabinets:
                await asyncio.to_thread(cabinet.dispense, 4)
            await asyncio.sleep(0.1)

        def settled() -> bool:
            return all(
                local_chain(c) == central_chain(central_db, c.cabinet_id)
                and any('"fleet.anchored"' in body for _, _, body in local_chain(c))
                for c in cabinets
            )

        await eventually(settled, timeout=60, what="every cabinet's chain at the central, anchored")
        for cabinet in cabinets:
            await cabinet.halt()
        stop.set()
        await asyncio.gather(*tasks)
        assert sum(w.stats.applied for w in pool) == sum(len(local_chain(c)) for c in cabinets)
        assert sum(w.stats.dead_letters for w in pool) == 0
        for cabinet in cabinets:
            cabinet.db.dispose()

    _run(scenario())
