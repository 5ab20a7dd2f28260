"""Accounting for a breached compartment with a count: a count that differs from the stock behind it raises a
discrepancy (the expected number stays in the ledger entry, never in the response)."""

from __future__ import annotations

import json

import pytest

from controller.domain.clock import FixedClock
from controller.engine.commands import AccountFor, Login, Logout
from controller.fsm.compartment import CompartmentState
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, chain_ok, entries, last_seq, make_engine, open_cabinet, seed
from tests.hardware.io_board.rigs import run


@pytest.mark.parametrize(("counted", "raises"), [(5, False), (4, True)])
def test_accounting_count_against_stock(db: Database, clock: FixedClock, counted: int, raises: bool) -> None:
    seed(db, clock)  # D1 is a matrix drawer whose one pocket D1-P01 holds 5 heparin

    async def scenario() -> None:
        async with open_cabinet("tcp") as cab:
            engine = make_engine(db, cab.board, clock)
            assert (await engine.restore()).ok
            cab.force_open(1)
            await engine.poll()
            assert engine.ctx.compartments["D1"].state is CompartmentState.BREACHED
            cab.force_shut(1)
            await engine.poll()
            start = last_seq(db)
            assert (await engine.execute(Login("PHARM1", pin="3333"))).ok
            accounted = await engine.execute(AccountFor("D1", counted=counted))
            assert accounted.ok, accounted
            raised = [json.loads(r.body) for r in entries(db, start) if r.event_type == "discrepancy.raised"]
            with db.read() as session:
                rows = engine_state.open_discrepancies(session, CABINET)
            summary = [(d["pocket_id"], d["quantity_expected"], d["quantity_actual"], d["reason_code"]) for d in raised]
            if raises:
                assert summary == [("D1-P01", 5, 4, "accounted_count_mismatch")]
                assert [r.pocket_id for r in rows] == ["D1-P01"]  # open until two people resolve it
            else:
                assert summary == [] and rows == []
            assert (await engine.execute(Logout())).ok
            assert chain_ok(db)

    run(scenario())
