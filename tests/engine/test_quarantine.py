"""Quarantine end to end over the I/O board on Modbus TCP: a recall blocks the lot everywhere and pulls skip it; a
refrigerator excursion read from the board's sensors quarantines the fridge's contents; critical-override mode
sends every removal to review."""

from __future__ import annotations

from datetime import timedelta

from controller.domain.clock import FixedClock
from controller.engine.commands import EnterCount, Login, Logout, SelectItem, StartPull, Take
from controller.engine.commands_pharmacy import RecallLot, SetCriticalOverride
from controller.store import engine_state
from controller.store.database import Database
from tests.engine.rig import CABINET, HEPARIN, entries, last_seq, ledger_stock_agrees, lots
from tests.engine.test_restock import INSULIN, open_pharmacy, seeded
from tests.hardware.io_board.rigs import run

__all__ = ["seeded"]


def test_recall_blocks_the_lot_and_pulls_skip_it(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            recalled = await e.execute(RecallLot("0409-1891-01", "A1"))  # morphine lot A1
            assert recalled.ok, recalled
            assert recalled.data["unload"] == [{"pocket_id": "D2-P01", "lot": "A1", "quantity": 2}]
            assert (await e.execute(Logout())).ok
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            assert (await e.execute(StartPull("MRN1"))).ok
            assert (await e.execute(SelectItem(order_id="ORD1"))).ok
            assert (await e.execute(EnterCount(9))).ok
            cab.world.open_drawer(2)
            await e.poll()
            cab.world.lift_lid(2, 1)
            await e.poll()
            assert (await e.execute(Take(1))).ok
            cab.world.close_lid(2, 1)
            await e.poll()
            cab.world.close_drawer(2)
            await e.poll()
            assert lots(seeded, "D2-P01") == {"OLD": 1, "A1": 2, "B2": 5}  # FEFO skipped the recalled lot
            # recall B2 too: only expired and recalled units are left, the pull is refused before any unlock
            assert (await e.execute(Logout())).ok
            assert (await e.execute(Login("PHARM1", pin="3333"))).ok
            assert (await e.execute(RecallLot("0409189101", "B2"))).ok
            assert (await e.execute(Logout())).ok
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            assert (await e.execute(StartPull("MRN1"))).ok
            blocked = await e.execute(SelectItem(order_id="ORD1"))
            assert blocked.code == "quarantine.no_usable_stock", blocked
            assert not cab.drawer_released(2)
            assert ledger_stock_agrees(seeded)

    run(scenario())


def test_fridge_excursion_quarantines_its_contents(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            start = last_seq(seeded)
            quarantine = e.pharmacy.quarantine
            assert (await quarantine.check_environment()).data["excursion"] is False
            cab.world.set_fridge_temperature(11.5)
            first = await quarantine.check_environment()
            assert first.data["excursion"] is True and first.data["quarantined"] == []
            clock.advance(timedelta(minutes=20))
            assert (await quarantine.check_environment()).data["quarantined"] == []
            clock.advance(timedelta(minutes=11))
            held = await quarantine.check_environment()
            assert held.data["quarantined"] == [{"pocket_id": "D3-P01", "lot": "INS1", "quantity": 3}]
            rows = [(r.event_type, r.lot_number) for r in entries(seeded, start)]
            assert rows == [("environment.temperature_excursion", None), ("stock.quarantined", "INS1")]
            with seeded.read() as session:
                assert engine_state.usable_lots(session, "D3-P01", clock.now().date()) == []
            clock.advance(timedelta(minutes=5))
            assert (await quarantine.check_environment()).data["quarantined"] == []  # once per excursion
            assert INSULIN

    run(scenario())


def test_critical_override_mode_flags_every_removal(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with open_pharmacy(seeded, clock) as ph:
            e, cab = ph.engine, ph.cab
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            assert (await e.execute(SetCriticalOverride(True))).code == "policy.privilege_missing"
            assert (await e.execute(StartPull("MRN1"))).ok
            assert (await e.execute(SelectItem(item_id=HEPARIN))).code == "policy.override_not_listed"
            assert (await e.execute(Logout())).ok
            assert (await e.execute(Login("ADMIN1", pin="5555"))).ok
            assert (await e.execute(SetCriticalOverride(True, "downtime drill"))).ok
            assert (await e.execute(Logout())).ok
            assert (await e.execute(Login("NURSE1", pin="1111"))).ok
            assert (await e.execute(StartPull("MRN1"))).ok
            chosen = await e.execute(SelectItem(item_id=HEPARIN))
            assert chosen.ok, chosen
            cab.world.open_drawer(1)
            await e.poll()
            assert (await e.execute(Take(1))).ok
            cab.world.close_drawer(1)
            await e.poll()
            with seeded.read() as session:
                reviews = engine_state.override_reviews(session, CABINET)
            assert [(r.user_id, r.item_id) for r in reviews] == [("NURSE1", HEPARIN)]

    run(scenario())
