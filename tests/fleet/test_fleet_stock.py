"""The central's stock view, built only from the chains it receives, equals every cabinet's own store lot for lot;
Global Find and the fleet-wide pick list answer from it with the cabinet's rule for usable units (not expired,
not held, in a pocket assigned the item)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from controller.domain.transactions import EventType, LedgerRecord
from controller.store.central import formulary as central_formulary
from controller.store.central import stock
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange
from controller.store.models import DrawerRow, PocketLotRow, PocketRow
from tests.fleet.harness import (
    Cabinet,
    NatsServer,
    central_chain,
    central_worker,
    eventually,
    local_chain,
    make_cabinet,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

TODAY = date(2026, 12, 7)


def cabinet_lots(cabinet: Cabinet) -> list[stock.LotStock]:
    with cabinet.db.read() as session:
        found = session.execute(
            select(PocketLotRow, PocketRow.item_id)
            .join(PocketRow, PocketRow.id == PocketLotRow.pocket_id)
            .join(DrawerRow)
            .where(DrawerRow.cabinet_id == cabinet.cabinet_id, PocketLotRow.quantity != 0)
            .order_by(PocketLotRow.pocket_id, PocketLotRow.lot_number)
        ).all()
        return [stock.LotStock(lot.pocket_id, item, lot.lot_number, lot.expiry, lot.quantity) for lot, item in found]


def central_lots(central_db: Database, cabinet_id: str) -> list[stock.LotStock]:
    with central_db.reader.connect() as connection:
        return stock.lots_of(connection, cabinet_id)


def move(cabinet: Cabinet, kind: EventType, pocket: str, lot: str, change: int, *, expiry: date | None = None) -> None:
    with cabinet.db.write() as session:
        InventoryStore(cabinet.ledger).apply(
            session, StockChange(pocket, lot, change, expiry=expiry), LedgerRecord(kind, actor_id="TECH1")
        )


def record(cabinet: Cabinet, entry: LedgerRecord) -> None:
    with cabinet.db.write() as session:
        cabinet.ledger.append(session, entry)


def test_the_central_stock_view_equals_each_cabinet_and_answers_find_and_pick_list(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    with central_db.write() as session:
        central_formulary.add_missing(session, load_formulary())

    async def scenario() -> None:
        async with central_worker(central_db, nats.url):
            a = make_cabinet(tmp_path, central_db, "CAB-A", nats.url, seeded=True)
            b = make_cabinet(tmp_path, central_db, "CAB-B", nats.url, seeded=True)
            for cabinet in (a, b):
                cabinet.start()
            # A: acetaminophen taken down to zero usable (a stock-out), ondansetron's lot recalled everywhere in A,
            # famotidine restocked with a lot that expired yesterday beside its good one.
            await asyncio.to_thread(move, a, EventType.DOSE_REMOVED, "D1-P01", "AC2407A", -40)
            await asyncio.to_thread(
                record,
                a,
                LedgerRecord(
                    EventType.LOT_QUARANTINED,
                    actor_id="PHARM1",
                    item_id="ONDANSETRON-2MG-ML-INJ",
                    lot_number="ON2411B",
                    reason_code="recall",
                ),
            )
            await asyncio.to_thread(
                move, a, EventType.STOCK_RESTOCKED, "D1-P03", "FA-OLD", 5, expiry=TODAY - timedelta(days=1)
            )
            # B: a few removals and a return, nothing unusual.
            await asyncio.to_thread(move, b, EventType.DOSE_REMOVED, "D1-P01", "AC2407A", -3)
            await asyncio.to_thread(move, b, EventType.DOSE_RETURNED, "D1-P01", "AC2407A", 1)

            def settled() -> bool:
                return all(local_chain(c) == central_chain(central_db, c.cabinet_id) for c in (a, b))

            await eventually(settled, timeout=60, what="both chains at the central")
            for cabinet in (a, b):
                await cabinet.halt()
            for cabinet in (a, b):
                assert central_lots(central_db, cabinet.cabinet_id) == cabinet_lots(cabinet)

            with central_db.reader.connect() as connection:
                found = {(r.cabinet_id, r.pocket_id): r for r in stock.find(connection, "acetaminophen", TODAY)}
                assert found["CAB-B", "D1-P01"].usable == 38 and found["CAB-B", "D1-P01"].item_name
                assert found["CAB-A", "D1-P01"].usable == 0 and found["CAB-A", "D1-P01"].status == "stock_out"
                ondansetron = {r.cabinet_id: r for r in stock.find(connection, "ondansetron", TODAY)}
                assert ondansetron["CAB-A"].on_hand == 12 and ondansetron["CAB-A"].usable == 0  # recalled
                assert ondansetron["CAB-B"].usable == 12 and ondansetron["CAB-B"].next_expiry == date(2027, 9, 30)
                famotidine = {r.cabinet_id: r for r in stock.find(connection, "FAMOTIDINE", TODAY)}
                assert famotidine["CAB-A"].on_hand == 19 and famotidine["CAB-A"].usable == 14  # 5 expired
                assert stock.find(connection, "%", TODAY) == []  # a wildcard is text, not a pattern

                picks = stock.pick_list(connection, TODAY)
                first = picks[0]
                assert (first.cabinet_id, first.pocket_id, first.status) == ("CAB-A", "D1-P01", "stock_out")
                assert first.to_par == 30  # refilled to par, never above max
                listed = {(r.cabinet_id, r.pocket_id) for r in picks}
                assert ("CAB-A", "D1-P02") in listed  # nothing usable while recalled
                assert ("CAB-B", "D1-P01") not in listed  # 38 usable, above its par of 30
                assert all(r.to_par > 0 for r in picks)
                assert stock.pick_list(connection, TODAY, cabinet_ids=["CAB-B"]) == [
                    r for r in picks if r.cabinet_id == "CAB-B"
                ]
                outs = stock.stock_outs(connection, TODAY)
                assert outs.get("CAB-A", 0) >= 2 and outs.get("CAB-A", 0) > outs.get("CAB-B", 0)
            for cabinet in (a, b):
                cabinet.db.dispose()

    asyncio.run(scenario())


def test_a_released_hold_makes_the_lot_usable_again(central_db: Database, nats: NatsServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_worker(central_db, nats.url):
            cabinet = make_cabinet(tmp_path, central_db, "CAB-R", nats.url, seeded=True)
            cabinet.start()
            await asyncio.to_thread(
                record,
                cabinet,
                LedgerRecord(
                    EventType.LOT_QUARANTINED,
                    item_id="ONDANSETRON-2MG-ML-INJ",
                    pocket_id="D1-P02",
                    lot_number="ON2411B",
                    reason_code="temperature_excursion",
                ),
            )
            held_seq = len(local_chain(cabinet))

            def usable() -> int:
                with central_db.reader.connect() as connection:
                    rows = stock.find(connection, "ONDANSETRON", TODAY)
                return rows[0].usable if rows and local_chain(cabinet) == central_chain(central_db, "CAB-R") else -1

            await eventually(lambda: usable() == 0, what="the held lot unusable at the central")
            await asyncio.to_thread(
                record,
                cabinet,
                LedgerRecord(
                    EventType.QUARANTINE_REVIEWED,
                    actor_id="PHARM1",
                    item_id="ONDANSETRON-2MG-ML-INJ",
                    pocket_id="D1-P02",
                    lot_number="ON2411B",
                    details={"decision": "release", "quarantined_seq": held_seq},
                ),
            )
            await eventually(lambda: usable() == 12, what="the released lot usable again at the central")
            await cabinet.halt()
            cabinet.db.dispose()

    asyncio.run(scenario())
