"""Exactly-once application under any interleaving of dispenses, link cuts, stalls, forwarder kills, worker kills
and NATS restarts (hypothesis stateful test over a real NATS server and PostgreSQL).

After every step the central's copy of each chain is a prefix of the cabinet's (nothing it does not hold, nothing
twice, nothing out of order); once the faults are healed it is the whole chain, entry for entry."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from controller.domain.clock import SystemClock
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.store.database import Database
from tests.fleet.harness import Cabinet, LinkProxy, NatsServer, central_chain, local_chain, make_cabinet, nats_server

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]


class _Loop:
    """An event loop on its own thread: the machine's rules are synchronous, the fleet is not."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            import faulthandler
            import sys

            faulthandler.dump_traceback(sys.stderr)
            for task in asyncio.all_tasks(self.loop):
                task.print_stack(limit=6, file=sys.stderr)
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def fleet_world(
    central_db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, NatsServer, Path, _Loop]]:
    loop = _Loop()
    with nats_server(tmp_path_factory.mktemp("nats-stateful")) as server:
        yield central_db, server, tmp_path_factory.mktemp("cabinets"), loop
    loop.close()


def test_exactly_once_under_faults(fleet_world: tuple[Database, NatsServer, Path, _Loop]) -> None:
    central_db, server, root, loop = fleet_world

    class FleetMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.cabinets: list[Cabinet] = []
            self.proxies: list[LinkProxy] = []
            self.worker_stop = asyncio.Event()
            self.worker: asyncio.Future[None] | None = None
            tag = uuid.uuid4().hex[:6]

            async def build() -> None:
                for index in range(2):
                    proxy = LinkProxy(server.port)
                    await proxy.start()
                    cabinet = make_cabinet(root, central_db, f"S{tag}-{index}", proxy.url)
                    cabinet.start()
                    self.proxies.append(proxy)
                    self.cabinets.append(cabinet)

            loop.run(build())
            self._start_worker()

        def _start_worker(self) -> None:
            async def begin() -> asyncio.Future[None]:
                self.worker_stop = asyncio.Event()
                config = WorkerConfig(ack_wait_s=1.0, fetch_timeout_s=0.1)
                worker = CentralWorker(central_db, server.url, SystemClock(), config=config)
                return asyncio.ensure_future(worker.run(self.worker_stop))

            self.worker = loop.run(begin())

        @rule(index=st.integers(0, 1), count=st.integers(1, 25))
        def dispense(self, index: int, count: int) -> None:
            self.cabinets[index].dispense(count)

        @rule(index=st.integers(0, 1))
        def cut_link(self, index: int) -> None:
            self.proxies[index].drop()

        @rule(index=st.integers(0, 1))
        def stall_link(self, index: int) -> None:
            self.proxies[index].stalled = True

        @rule(index=st.integers(0, 1))
        def restore_link(self, index: int) -> None:
            self.proxies[index].restore()

        @rule(index=st.integers(0, 1))
        def kill_forwarder(self, index: int) -> None:
            cabinet = self.cabinets[index]

            async def kill_and_restart() -> None:
                assert cabinet.task is not None
                cabinet.task.cancel()
                await asyncio.gather(cabinet.task, return_exceptions=True)
                cabinet.start()

            loop.run(kill_and_restart())

        @rule()
        def kill_worker(self) -> None:
            async def kill() -> None:
                assert self.worker is not None
                self.worker.cancel()
                await asyncio.gather(self.worker, return_exceptions=True)

            loop.run(kill())
            self._start_worker()

        @rule()
        def restart_nats(self) -> None:
            server.stop()
            server.start()

        @invariant()
        def central_holds_a_prefix_of_each_chain(self) -> None:
            for cabinet in getattr(self, "cabinets", []):
                held, local = central_chain(central_db, cabinet.cabinet_id), local_chain(cabinet)
                assert held == local[: len(held)]

        def teardown(self) -> None:
            for proxy in self.proxies:
                proxy.restore()

            async def settle() -> None:
                deadline = asyncio.get_running_loop().time() + 60
                while True:
                    chains = [
                        (
                            await asyncio.to_thread(local_chain, c),
                            await asyncio.to_thread(central_chain, central_db, c.cabinet_id),
                        )
                        for c in self.cabinets
                    ]
                    if all(local == held for local, held in chains):
                        break
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"not settled: {[(len(a), len(b)) for a, b in chains]}")
                    await asyncio.sleep(0.2)
                for cabinet in self.cabinets:
                    await cabinet.halt()
                    cabinet.db.dispose()
                self.worker_stop.set()
                if self.worker is not None:
                    await asyncio.gather(self.worker, return_exceptions=True)
                for proxy in self.proxies:
                    await proxy.close()

            loop.run(settle(), timeout=120)

    FleetMachine.TestCase.settings = settings(
        max_examples=4, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip
    FleetMachine.TestCase().runTest()
