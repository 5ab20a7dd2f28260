"""One ``Tick`` on a fixed clock drives every time rule: inactivity logoff, a drawer left open, an overdue waste
and a discrepancy past its deadline, each with its entry and (for waste and discrepancy) its row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.domain.clock import FixedClock
from controller.engine.commands import Login, SelectItem, StartPull, Take, Tick
from controller.engine.commands_clinical import DeferWaste, ListDiscrepancies, ListPendingWastes
from controller.store.database import Database
from controller.store.models import DiscrepancyRow, PendingWasteRow
from tests.engine.rig import chain_ok, entries, last_seq, open_cabinet
from tests.engine.test_witness import KINDS, body, clinical_engine, ok, pull_morphine, ready, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


@pytest.mark.parametrize("kind", KINDS)
def test_one_tick_escalates_everything_that_is_due(kind: str, seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_cabinet(kind) as cab:
            engine = clinical_engine(seeded, cab.board, clock)
            await ready(engine)
            await pull_morphine(engine, cab, count=5)  # a discrepancy, due by 19:00
            await ok(engine, DeferWaste())  # a waste, due by 19:00
            await ok(engine, StartPull("MRN1"))
            await ok(engine, SelectItem(order_id="ORD2"))
            cab.world.open_drawer(1)
            await engine.poll()
            await ok(engine, Take(1))  # and the matrix drawer is left open
            quiet = await ok(engine, Tick())
            assert quiet.data == {"session": "authenticated", "recorded": 0}
            start = last_seq(seeded)
            clock.advance(timedelta(hours=5))  # 19:30: past the end of the shift
            ticked = await ok(engine, Tick())
            assert ticked.data["session"] == "logged_out"
            new = [body(r) for r in entries(seeded, start)]
            kinds = {(r["event_type"], r["reason_code"]) for r in new}
            assert ("session.logout", "inactivity") in kinds
            assert ("drawer.left_open", None) in {(k, None) for k, _ in kinds}
            assert ("dose.waste_overdue", "waste_overdue") in kinds
            assert ("discrepancy.escalated", "unresolved_at_deadline") in kinds
            assert ticked.data["recorded"] == len(new)
            with seeded.read() as session:
                assert [r.status for r in session.query(PendingWasteRow)] == ["escalated"]
                assert [r.status for r in session.query(DiscrepancyRow)] == ["escalated"]
            again = await ok(engine, Tick())  # escalated once: nothing new but the drawer alarm rule's own
            assert not [r for r in entries(seeded, start + len(new)) if r.event_type.startswith(("dose", "disc"))]
            assert again.ok
            # after a restart the escalated waste and discrepancy come back as escalated
            engine = clinical_engine(seeded, cab.board, clock)
            await ok(engine, Login("NURSE1", pin="1111"))
            [pending] = (await ok(engine, ListPendingWastes())).data["wastes"]
            assert pending["state"] == "escalated" and pending["escalated"]
            [d] = (await ok(engine, ListDiscrepancies())).data["discrepancies"]
            assert d["state"] == "escalated"
            await ok(engine, StartPull("MRN1"))
            assert (await engine.execute(SelectItem(order_id="ORD1"))).code == "workflow.discrepancy_open"
            assert chain_ok(seeded)

    run(scenario())
