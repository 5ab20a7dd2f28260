"""An order that arrived by HL7 drives the engine's profiled pull: RDE NW over a real socket, then login, pull,
blind count and removal through the I/O board driver on the simulator (Modbus TCP); a DC over HL7 stops the next
pull, and an order for an item the cabinet does not stock is shown as such."""

from __future__ import annotations

import json

from controller.domain.clock import FixedClock
from controller.engine.commands import EnterCount, Login, SelectItem, StartPull, Take
from controller.integration.hl7 import open_listener
from controller.store.database import Database
from tests.engine.rig import MORPHINE, chain_ok, entries, make_engine, open_cabinet, seed, stock
from tests.hardware.io_board.rigs import run
from tests.integration.hl7_rig import MllpClient, one, rde


def test_an_hl7_order_is_pulled_and_a_dc_stops_the_next_pull(db: Database, clock: FixedClock) -> None:
    seed(db, clock)  # profiled ICU cabinet CAB-E: morphine in lidded pocket D2-P01 (9 units), patient MRN1

    async def scenario() -> None:
        listener = await open_listener(db, clock)
        client = await MllpClient.connect(listener.address)
        try:
            ack = await client.send(rde("M1", "RX-100", "MRN1", give="0409-1891-03^morphine^NDC", tq1="TQ1|1||Q4H"))
            assert ack.code == "AA", ack.text
            assert (await client.send(rde("M2", "RX-200", "MRN1", give="0000-0000-00^x^NDC"))).code == "AA"
            async with open_cabinet("tcp") as cab:
                engine = make_engine(db, cab.board, clock)
                assert (await engine.restore()).ok
                assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
                pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
                chosen = await engine.execute(SelectItem(pull_id, order_id="RX-100"))
                assert chosen.ok, chosen
                assert (await engine.execute(EnterCount(pull_id, 9))).ok
                assert cab.drawer_released(2) and cab.lid_released(2, 1)
                cab.world.open_drawer(2)
                await engine.poll()
                cab.world.lift_lid(2, 1)
                await engine.poll()
                assert (await engine.execute(Take(pull_id, 1))).ok
                cab.world.close_lid(2, 1)
                await engine.poll()
                cab.world.close_drawer(2)
                await engine.poll()
                removed = [r for r in entries(db) if r.event_type == "dose.removed"]
                assert [(r.order_id, r.patient_id, r.item_id, r.quantity_change) for r in removed] == [
                    ("RX-100", "MRN1", MORPHINE, -1)
                ]
                assert json.loads(removed[0].body)["order_id"] == "RX-100"
                assert stock(db)["D2-P01"] == 8

                ack = await client.send(rde("M3", "RX-100", "MRN1", control="DC"))
                assert ack.code == "AA", ack.text
                next_pull = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
                stopped = await engine.execute(SelectItem(next_pull, order_id="RX-100"))
                assert (stopped.ok, stopped.code) == (False, "policy.order_not_verified")
                elsewhere = await engine.execute(SelectItem(next_pull, order_id="RX-200"))
                assert (elsewhere.ok, elsewhere.code) == (False, "engine.item_not_stocked")
            assert one(db, "orders", id="RX-100")["status"] == "discontinued"
            assert chain_ok(db)
        finally:
            await client.close()
            await listener.close()

    run(scenario(), timeout=60)
