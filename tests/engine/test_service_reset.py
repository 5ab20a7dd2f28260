"""A compartment at fault is returned to service by a privileged user once the lock is repaired; until then, or if
the lock still does not engage, it stays out of service. End to end over the I/O board simulator (Modbus TCP)."""

from __future__ import annotations

import json

import pytest

from controller.domain.clock import FixedClock
from controller.engine.commands import Login, Logout, ServiceCompartment, Take
from controller.fsm.compartment import CompartmentState
from controller.store.database import Database
from simulators.common.faults import Fault, FaultKind, FaultPlan
from tests.engine.pharmacy_rig import seed
from tests.engine.rig import chain_ok, entries, last_seq, make_engine, open_cabinet
from tests.engine.test_faults_e2e import login, ok, start_pull, state_of
from tests.hardware.io_board.rigs import run

C = CompartmentState


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)  # the engine rig's cabinet plus a technician and a refrigerator drawer
    return db


def test_faulted_drawer_back_in_service_after_repair(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        faults = FaultPlan([Fault(FaultKind.LOCK_FAILS, at_time=1001.0, params={"drawer": 1})])
        async with open_cabinet("tcp", faults=faults) as cab:
            engine = make_engine(seeded, cab.board, clock)
            assert (await engine.restore()).ok
            await login(engine, "NURSE1", "1111")
            pull_id = await start_pull(engine, "ORD2")
            cab.world.clock.advance(1.0)
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, Take(pull_id, 1))
            cab.world.close_drawer(1)
            await engine.poll()
            assert state_of(engine, "D1") is C.FAULT
            start = last_seq(seeded)

            refused = await engine.execute(ServiceCompartment("D1"))
            assert refused.code == "policy.privilege_missing", refused  # a nurse does not service drawers
            await login(engine, "PHARM1", "3333")
            # not repaired yet: the reset is recorded, the lock is commanded, and it is at fault again
            await ok(engine, ServiceCompartment("D1"))
            assert state_of(engine, "D1") is C.FAULT
            cab.world.drawers[1].lock_fails = False  # the technician replaces the actuator
            done = await ok(engine, ServiceCompartment("D1"))
            assert done.data["compartment"] == "locked"
            assert not cab.drawer_released(1)
            kinds = [json.loads(r.body)["details"]["kind"] for r in entries(seeded, start)]
            assert kinds.count("drawer.service_reset") == 2
            # in service again: the next pull unlocks it
            await ok(engine, Logout())
            await ok(engine, Login("NURSE1", pin="1111"))
            again = await start_pull(engine, "ORD2")
            assert cab.drawer_released(1) and engine.ctx.compartments["D1"].holds_grant(again)
            assert chain_ok(seeded)

    run(scenario())
